"""Soak: mixed Blueprints at a steady rate for N minutes against a real stack, watching for growth.

    .venv/bin/python -m benchmarks.soak [--minutes 30] [--rate 2] [--sample-s 15] [--quick]

One private Redis, one `conductor worker` (-c 2), a `conductor recorder` and a `conductor api`,
each its own process. A client thread POSTs one execution every 1/rate seconds through the API,
cycling through the BLUEPRINTS below (chains, fan-out and fan-in, JavaScript, a loop, a
blob-sized output, a failing node). Every `--sample-s` it samples the RSS and open descriptors
of each process (a worker with its pool children), Redis `used_memory`, the blob store's and
the history file's size. At the end it waits for every execution to be recorded and prints the
samples and each measure's growth per 1000 executions: the least-squares slope over the samples
after the first fifth (start-up and warm caches), so a flat line is noise around 0.

Finished executions keep their Redis keys `CONDUCTOR_FINISHED_TTL_S` (60 s here instead of a
day), so Redis memory reaches its plateau within the run; the history store grows by design.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import redis
import yaml

from conductor.embedded import ApiProcess, RedisServer, ServiceProcess, WorkerProcess
from storage import keys

MB = 1024 * 1024
BLUEPRINTS = {
    "chain": """
id: soak-chain
name: Soak chain
nodes:
  - {id: a, type: edit-fields, parameters: {values: {n: 1, at: "{{$now}}"}, keepOnlySet: true}}
  - {id: b, type: transform, parameters: {transformFunction: "x => ({...x, n: x.n + 1})"}}
  - {id: c, type: edit-fields, parameters: {values: {done: true}}}
edges: [{source: a, target: b}, {source: b, target: c}]
""",
    "fan": """
id: soak-fan
name: Soak fan-out and fan-in
nodes:
  - {id: start, type: edit-fields, parameters: {values: {n: 2}, keepOnlySet: true}}
"""
    + "".join(
        f"  - {{id: p{i}, type: transform, parameters: {{transformFunction: 'x => x.n * {i}'}}}}\n"
        for i in range(6)
    )
    + """  - {id: join, type: edit-fields, parameters: {values: {joined: true}}}
edges:
"""
    + "".join(
        f"  - {{source: start, target: p{i}}}\n  - {{source: p{i}, target: join, "
        f"targetHandle: p{i}}}\n"
        for i in range(6)
    ),
    "loop": """
id: soak-loop
name: Soak loop
nodes:
  - id: each
    type: loop
    parameters: {array: [1, 2, 3, 4]}
    nodes: [{id: twice, type: transform, parameters: {transformFunction: "x => x * 2"}}]
""",
    "blob": """
id: soak-blob
name: Soak large output
nodes:
  - {id: big, type: transform, parameters: {transformFunction: "x => (x.seed + '.').repeat(60000)"}}
  - {id: size, type: transform, parameters: {transformFunction: "x => x.length"}}
edges: [{source: big, target: size}]
""",
    "failing": """
id: soak-failing
name: Soak failing node
nodes:
  - {id: ok, type: edit-fields, parameters: {values: {n: 1}}}
  - {id: boom, type: transform, parameters: {transformFunction: "x => { throw new Error('no') }",
     retries: 0}}
edges: [{source: ok, target: boom}]
""",
}
# Cycled in this order: chains and fans most often, as a workload's mix would be.
MIX = ("chain", "fan", "chain", "loop", "blob", "chain", "fan", "failing")


@dataclass
class Sample:
    """One look at the stack."""

    elapsed_s: float
    executions: int  # accepted so far
    rss_mb: dict[str, float]
    fds: dict[str, int]
    redis_mb: float
    redis_keys: int
    blobs_mb: float
    history_mb: float

    def measures(self) -> dict[str, float]:
        """Every measure by name."""
        return {
            **{f"{name} RSS MB": value for name, value in self.rss_mb.items()},
            **{f"{name} fds": float(value) for name, value in self.fds.items()},
            "redis used_memory MB": self.redis_mb,
            "redis keys": float(self.redis_keys),
            "blob store MB": self.blobs_mb,
            "history file MB": self.history_mb,
        }


@dataclass
class Submitter:
    """POSTs executions at a steady rate until stopped."""

    http: httpx.Client
    rate: float
    ids: list[str] = field(default_factory=list)
    refused: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        blueprints = [yaml.safe_load(BLUEPRINTS[name]) for name in MIX]
        started = time.monotonic()
        while not self.stop.is_set():
            count = len(self.ids)  # the seed makes each large output new content
            body = {"blueprint": blueprints[count % len(MIX)], "inputs": {"seed": count}}
            response = self.http.post("/v1/executions", json=body)
            if response.status_code == 202:
                self.ids.append(response.json()["id"])
            else:
                self.refused += 1
            next_at = started + (len(self.ids) + self.refused) / self.rate
            self.stop.wait(max(0.0, next_at - time.monotonic()))


def tree(pid: int) -> list[psutil.Process]:
    """A process and its descendants (a worker's pool children come and go)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def rss_and_fds(processes: list[psutil.Process]) -> tuple[float, int]:
    """Summed RSS (MB) and open descriptors."""
    rss, fds = 0.0, 0
    for process in processes:
        try:
            rss += process.memory_info().rss / MB
            fds += process.num_fds()
        except psutil.NoSuchProcess:
            continue
    return rss, fds


def files_mb(paths: list[Path]) -> float:
    """Bytes of the files among `paths`, in MB."""
    return sum(p.stat().st_size for p in paths if p.is_file()) / MB


def sample(
    started: float, pids: dict[str, int], client: redis.Redis, root: Path, executions: int
) -> Sample:
    """Look at every process, Redis and the stores once."""
    rss: dict[str, float] = {}
    fds: dict[str, int] = {}
    for name, pid in pids.items():
        rss[name], fds[name] = rss_and_fds(tree(pid))
    memory: Any = client.info("memory")
    return Sample(
        elapsed_s=time.monotonic() - started,
        executions=executions,
        rss_mb=rss,
        fds=fds,
        redis_mb=memory["used_memory"] / MB,
        redis_keys=client.dbsize(),
        blobs_mb=files_mb(list((root / "blobs").rglob("*"))),
        history_mb=files_mb(list(root.glob("history.sqlite3*"))),  # with its write-ahead log
    )


def slope_per_1000(samples: list[Sample], measure: str) -> float:
    """Least-squares growth of `measure` per 1000 accepted executions."""
    xs = [s.executions for s in samples]
    ys = [s.measures()[measure] for s in samples]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return 0.0
    return 1000 * sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread


def drain(client: redis.Redis, submitted: int, timeout_s: float) -> bool:
    """Until no execution is live and the recorder's stream is empty."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        live = client.zcard(keys.LIVE_EXECUTIONS)
        unrecorded = client.xlen(keys.EVENTS_STREAM)
        if submitted and live == 0 and unrecorded == 0:
            return True
        time.sleep(0.5)
    return False


def report(samples: list[Sample], ids: int, refused: int, seconds: float, drained: bool) -> None:
    """The samples, then growth per 1000 executions after the first fifth."""
    names = list(samples[0].measures())
    print(
        f"soak: {ids} executions accepted ({refused} refused) in {seconds / 60:.1f} min "
        f"({ids / seconds:.2f}/s), mix {'/'.join(MIX)}; all final and recorded: {drained}"
    )
    print(f"{'t s':>6}{'execs':>7}  " + "  ".join(n.replace(" ", "_") for n in names))
    for s in samples:
        values = " ".join(f"{value:.1f}" for value in s.measures().values())
        print(f"{s.elapsed_s:6.0f}{s.executions:7d}  {values}")
    steady = samples[len(samples) // 5 :]
    print(f"growth per 1000 executions (samples {len(samples) - len(steady) + 1}..{len(samples)}):")
    for name in names:
        first, last = steady[0].measures()[name], steady[-1].measures()[name]
        print(
            f"  {name:28}{slope_per_1000(steady, name):+9.2f} per 1000"
            f"   ({first:.1f} -> {last:.1f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=2.0, help="executions per second")
    parser.add_argument("--sample-s", type=float, default=15.0, help="seconds between samples")
    parser.add_argument("--quick", action="store_true", help="8 s at 4/s, a sample a second")
    options = parser.parse_args()
    if options.quick:
        options.minutes, options.rate, options.sample_s = 8 / 60, 4.0, 1.0
    root = Path(tempfile.mkdtemp(prefix="conductor-soak-"))
    with RedisServer(root / "redis") as server:
        env = {
            "CONDUCTOR_REDIS_URL": server.url,
            "CONDUCTOR_DATA_DIR": str(root),
            "CONDUCTOR_BLOB_DIR": str(root / "blobs"),
            "CONDUCTOR_HISTORY_URL": f"sqlite:///{root / 'history.sqlite3'}",
            "CONDUCTOR_FINISHED_TTL_S": "60",
        }
        worker = WorkerProcess(server.url, concurrency=2, env=env, name="soak@%h").start()
        recorder = ServiceProcess(["recorder", "--name", "soak"], env).start()
        api = ApiProcess(env).start()
        client = redis.Redis.from_url(server.url)
        try:
            processes = {"worker": worker.process, "recorder": recorder.process}
            processes["api"], processes["redis"] = api.process, server.process
            pids = {name: p.pid for name, p in processes.items() if p is not None}
            with httpx.Client(base_url=api.url, timeout=30) as http:
                submitter = Submitter(http, options.rate)
                thread = threading.Thread(target=submitter.run, daemon=True)
                started = time.monotonic()
                thread.start()
                samples = [sample(started, pids, client, root, 0)]
                end = started + options.minutes * 60
                while time.monotonic() < end:
                    time.sleep(min(options.sample_s, max(0.0, end - time.monotonic())))
                    samples.append(sample(started, pids, client, root, len(submitter.ids)))
                submitter.stop.set()
                thread.join()
                seconds = time.monotonic() - started
                drained = drain(client, len(submitter.ids), timeout_s=120)
                samples.append(sample(started, pids, client, root, len(submitter.ids)))
            report(samples, len(submitter.ids), submitter.refused, seconds, drained)
        finally:
            client.close()
            api.stop()
            recorder.stop()
            worker.stop()


if __name__ == "__main__":
    main()
