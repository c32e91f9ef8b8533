"""Scale-out: throughput of I/O-bound executions with 1, 2 and 4 worker processes.

    .venv/bin/python -m benchmarks.scaling [--executions 100] [--workers 1,2,4]
                                           [--worker-concurrency 2] [--delay-ms 50] [--quick]

One private Redis; for each count, that many worker processes (`benchmarks.worker` plus a bare
sleep task, each `-c --worker-concurrency`). Both sides run the same batch on the same workers:
Conductor executions of a 10-node Blueprint of `delay` nodes, and the equivalent bare Celery
canvas of sleep tasks. See benchmarks/README.md. Also the machinery of benchmarks/ceiling.py.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import celery
import psutil
import redis
from celery import Celery, Task, chain, group
from celery.canvas import Signature
from celery.signals import worker_init

from benchmarks import worker as bench_worker
from benchmarks.recording import recorder
from conductor.dispatch import Dispatcher
from conductor.embedded import RedisServer, WorkerProcess
from conductor.model.blueprint import Blueprint
from conductor.model.loader import load_blueprint_text
from conductor.model.settings import Settings
from nodes.registry import default_registry
from storage import keys
from workers.app import create_app
from workers.tasks import make_stores

SLEEP_TASK = "bench.sleep"
SCALING_WORKER = "python -m benchmarks.scaling worker (benchmarks.worker plus bench.sleep)"
BATCH_TIMEOUT_S = 600.0
READY_TIMEOUT_S = 60.0
RSS_EVERY_S = 0.25
MIB = 2**20
# Level widths of the 10-node shape: a chain of groups, as Conductor's canvases are.
LEVELS = (1, 4, 4, 1)

BareCanvas = Callable[[Celery, str], Signature[Any]]
SIDES = ("bare", "conductor")


class BatchFailed(RuntimeError):
    """A batch did not end well within the time allowed."""


@dataclass(frozen=True)
class Batch:
    """One timed batch: every execution submitted at once, until the last one is known done."""

    side: str
    executions: int
    nodes: int  # per execution
    submit_s: float
    total_s: float

    @property
    def executions_per_s(self) -> float:
        """Executions finished per second, submission included."""
        return self.executions / self.total_s

    @property
    def nodes_per_s(self) -> float:
        """Node transitions (a node run to its outcome; a task for bare) per second."""
        return self.executions * self.nodes / self.total_s


@dataclass(frozen=True)
class Memory:
    """RSS of each worker process tree (main process and pool children), sampled while running."""

    max_bytes: int
    mean_bytes: float

    def describe(self) -> str:
        """`max X MiB, mean Y MiB`."""
        return f"max {self.max_bytes / MIB:.0f} MiB, mean {self.mean_bytes / MIB:.0f} MiB"


@dataclass(frozen=True)
class Client:
    """The benchmark's side of the private Redis: settings, dispatcher, a Redis client."""

    settings: Settings
    env: dict[str, str]
    redis: redis.Redis
    dispatcher: Dispatcher

    @property
    def app(self) -> Celery:
        """The Celery app both sides send with."""
        return self.dispatcher.app

    @property
    def url(self) -> str:
        """The private Redis."""
        return str(self.settings.redis_url)


class ScalingWorkerProcess(WorkerProcess):
    """`python -m benchmarks.scaling worker`: the benchmark worker plus `bench.sleep`."""

    entry_point = ("-m", "benchmarks.scaling", "worker")


def register_sleep_task(app: Celery, client: redis.Redis) -> None:
    """`bench.sleep(ms, run_id=None)`: sleep; with a run id, announce the run's end after."""

    @app.task(name=SLEEP_TASK, bind=True, ignore_result=True, max_retries=None)
    def sleep(self: Task[Any, Any], ms: int, run_id: str | None = None) -> None:
        """Sleep `ms` milliseconds (as the `delay` node does), then maybe announce."""
        time.sleep(ms / 1000)
        if run_id is not None:
            client.publish(bench_worker.done_channel(run_id), bench_worker.DONE_MESSAGE)


def _add_sleep_task(sender: Any, **_: Any) -> None:
    redis_url = Settings.from_env().redis_url
    assert redis_url is not None, "conductor worker refuses to start without a Redis URL"
    register_sleep_task(sender.app, redis.Redis.from_url(redis_url))


def worker_main(argv: list[str]) -> None:
    """Run `benchmarks.worker` (itself `conductor worker`) with `bench.sleep` added."""
    worker_init.connect(_add_sleep_task, weak=False)
    bench_worker.main(argv)


def make_client(redis_url: str, env: dict[str, str]) -> Client:
    """Settings read from the environment the workers get, and the client's objects."""
    env = {**env, "CONDUCTOR_REDIS_URL": redis_url}
    settings = Settings.from_env({**os.environ, **env})
    dispatcher = Dispatcher(create_app(settings), make_stores(settings), default_registry())
    return Client(settings, env, redis.Redis.from_url(redis_url), dispatcher)


def levels_blueprint(node: dict[str, Any], levels: Sequence[int] = LEVELS) -> Blueprint:
    """Nodes in levels of the given widths, each node wired to every node of the level before."""
    names = [[f"l{depth}n{index}" for index in range(width)] for depth, width in enumerate(levels)]
    edges = [
        {"source": source, "target": target}
        for before, after in itertools.pairwise(names)
        for source in before
        for target in after
    ]
    data = {
        "id": "levels",
        "name": "Levels",
        "nodes": [{"id": name, **node} for level in names for name in level],
        "edges": edges,
    }
    return load_blueprint_text(json.dumps(data), json_only=True)


def levels_canvas(
    app: Celery, task: Callable[[str | None], Signature[Any]], run_id: str
) -> Signature[Any]:
    """The bare canvas of the same shape: a chain of groups; the last task announces the end."""
    steps: list[Signature[Any]] = []
    for depth, width in enumerate(LEVELS):
        last = depth == len(LEVELS) - 1
        signatures = [task(run_id if last else None) for _ in range(width)]
        steps.append(signatures[0] if width == 1 else group(signatures, app=app))
    return chain(*steps, app=app)


@contextmanager
def subscribed(client: redis.Redis, channels: Sequence[str]) -> Iterator[Any]:
    """One pub/sub connection subscribed to every channel (confirmed by the server)."""
    pubsub = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
    pubsub.subscribe(*channels)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while dict(client.pubsub_numsub(channels[-1])).get(channels[-1].encode(), 0) < 1:
        if time.monotonic() > deadline:
            raise BatchFailed("the SUBSCRIBE was not confirmed")
        time.sleep(0.01)
    try:
        yield pubsub
    finally:
        pubsub.close()


def wait_for_messages(
    pubsub: Any, count: int, check: Callable[[bytes], None], timeout_s: float = BATCH_TIMEOUT_S
) -> None:
    """Return once `count` messages arrived, each passed to `check`."""
    deadline = time.monotonic() + timeout_s
    seen = 0
    while seen < count:
        left = deadline - time.monotonic()
        if left <= 0:
            raise BatchFailed(f"{count - seen} of {count} runs not done within {timeout_s} s")
        message = pubsub.get_message(timeout=left)
        if message:
            check(message["data"])
            seen += 1


def conductor_batch(client: Client, blueprint: Blueprint, executions: int) -> Batch:
    """Submit `executions` at once (Dispatcher.submit in a loop); wait for every done channel."""
    ids = [str(uuid.uuid4()) for _ in range(executions)]
    with subscribed(client.redis, [keys.done_channel(i) for i in ids]) as pubsub:
        start = time.perf_counter()
        for execution_id in ids:
            client.dispatcher.submit(blueprint, {}, execution_id=execution_id)
        submitted = time.perf_counter()
        wait_for_messages(pubsub, executions, _succeeded)
    end = time.perf_counter()
    return Batch("conductor", executions, len(blueprint.nodes), submitted - start, end - start)


def _succeeded(data: bytes) -> None:
    event = json.loads(data)
    if event["type"] != "execution.succeeded":
        raise BatchFailed(f"execution {event['execution_id']} ended {event['type']}: {event}")


def bare_batch(client: Client, canvas: BareCanvas, executions: int, nodes: int) -> Batch:
    """Send `executions` bare canvases at once (as the Dispatcher sends); wait for each end."""
    run_ids = [uuid.uuid4().hex for _ in range(executions)]
    with subscribed(client.redis, [bench_worker.done_channel(r) for r in run_ids]) as pubsub:
        start = time.perf_counter()
        for run_id in run_ids:
            canvas(client.app, run_id).apply_async(ignore_result=True)
        submitted = time.perf_counter()
        wait_for_messages(pubsub, executions, lambda _: None)
    end = time.perf_counter()
    return Batch("bare", executions, nodes, submitted - start, end - start)


class RssSampler:
    """Samples the RSS of each worker's process tree in a thread, while in its block."""

    def __init__(self, workers: Sequence[WorkerProcess]) -> None:
        self.roots = [psutil.Process(w.process.pid) for w in workers if w.process is not None]
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self.samples += [tree_rss(root) for root in self.roots]
            if self._stop.wait(RSS_EVERY_S):
                return

    def memory(self) -> Memory:
        """Max and mean over every sample of every worker tree."""
        return Memory(max(self.samples, default=0), statistics.fmean(self.samples or [0]))


def measured(workers: Sequence[WorkerProcess], run: Callable[[], Batch]) -> tuple[Batch, Memory]:
    """Run one batch while sampling the workers' memory."""
    with RssSampler(workers) as sampler:
        batch = run()
    return batch, sampler.memory()


def tree_rss(root: psutil.Process) -> int:
    """RSS of a process and all its descendants (0 for any that ended meanwhile)."""
    total = 0
    for process in [root, *_children(root)]:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


def _children(root: psutil.Process) -> list[psutil.Process]:
    try:
        return root.children(recursive=True)
    except psutil.NoSuchProcess:
        return []


@contextmanager
def running_workers(
    client: Client,
    count: int,
    concurrency: int,
    log_dir: Path,
    kind: type[WorkerProcess] = ScalingWorkerProcess,
) -> Iterator[list[WorkerProcess]]:
    """`count` worker processes, each `-c concurrency`, answering a ping before yielding."""
    with ExitStack() as stack:
        workers: list[WorkerProcess] = []
        for index in range(count):
            worker = kind(
                client.url,
                concurrency=concurrency,
                env=client.env,
                log_path=log_dir / f"worker-{index}.log",
            ).start()
            stack.callback(worker.kill)  # as embedded() does: nothing to keep
            workers.append(worker)
        wait_until_ready(client.app, count)
        yield workers


def wait_until_ready(app: Celery, count: int) -> None:
    """Until `count` workers answer Celery's ping."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while len(app.control.ping(timeout=0.5) or []) < count:
        if time.monotonic() > deadline:
            raise BatchFailed(f"fewer than {count} workers answered within {READY_TIMEOUT_S} s")


@dataclass(frozen=True)
class Options:
    """Command-line options."""

    executions: int
    workers: tuple[int, ...]
    worker_concurrency: int
    delay_ms: int
    warmup: int


def parse_options(argv: Sequence[str] | None = None) -> Options:
    """Options from the command line; --quick is a smoke test of a few seconds."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scaling")
    parser.add_argument("--executions", type=int, default=100, help="executions per batch")
    parser.add_argument("--workers", default="1,2,4", help="worker process counts to compare")
    parser.add_argument("--worker-concurrency", type=int, default=2, help="-c of each worker")
    parser.add_argument("--delay-ms", type=int, default=50, help="each node's wait")
    parser.add_argument("--warmup", type=int, default=10, help="executions per side, untimed")
    parser.add_argument("--quick", action="store_true", help="10 executions, 1 and 2 workers")
    args = parser.parse_args(argv)
    workers = tuple(int(part) for part in args.workers.split(","))
    if args.quick:
        args.executions, workers, args.warmup = 10, (1, 2), 2
    if min(args.executions, args.worker_concurrency, *workers) < 1 or args.delay_ms < 0:
        parser.error("counts must be >= 1 and --delay-ms >= 0")
    return Options(args.executions, workers, args.worker_concurrency, args.delay_ms, args.warmup)


def main(argv: Sequence[str] | None = None) -> None:
    """Run every worker count, both sides, and print the table."""
    options = parse_options(argv)
    node = {"type": "delay", "parameters": {"ms": options.delay_ms}}
    blueprint = levels_blueprint(node)
    nodes = len(blueprint.nodes)

    def canvas(app: Celery, run_id: str) -> Signature[Any]:
        def sleep(announce: str | None) -> Signature[Any]:
            return app.signature(SLEEP_TASK, args=(options.delay_ms, announce), immutable=True)

        return levels_canvas(app, sleep, run_id)

    with tempfile.TemporaryDirectory(prefix="conductor-bench-") as tmp, RedisServer() as server:
        client = make_client(server.url, {"CONDUCTOR_DATA_DIR": str(Path(tmp) / "data")})
        print_header("scaling", client, f"{SCALING_WORKER} -c {options.worker_concurrency} each")
        print(
            f"{options.executions} executions at once of {len(blueprint.nodes)} `delay` nodes of "
            f"{options.delay_ms} ms in levels {LEVELS}; bare: the same chain of groups of "
            f"`{SLEEP_TASK}`\n"
        )
        print_scaling_header()
        firsts: list[Batch] = []
        batches: dict[str, Callable[[], Batch]] = {
            "bare": lambda: bare_batch(client, canvas, options.executions, nodes),
            "conductor": lambda: conductor_batch(client, blueprint, options.executions),
        }
        for index, count in enumerate(options.workers):
            workers = running_workers(client, count, options.worker_concurrency, Path(tmp))
            with recorder(client.env, Path(tmp)), workers as running:
                for _ in range(2 if options.warmup else 0):  # both sides: imports, forks, scripts
                    bare_batch(client, canvas, options.warmup, len(blueprint.nodes))
                    conductor_batch(client, blueprint, options.warmup)
                # Which side goes first alternates with each worker count (a side that runs
                # second finds the workers warmer and Redis's memory grown).
                order = SIDES if index % 2 == 0 else SIDES[::-1]
                measured_rows = {side: measured(running, batches[side]) for side in order}
                rows = [measured_rows[side] for side in SIDES]
            firsts = firsts or [batch for batch, _ in rows]
            print_scaling_rows(count, rows, firsts, first_side=order[0])
        print(
            "x first: throughput over the same side's with the first worker count (aims with "
            "1,2,4: >= 1.8x at 2, >= 3.2x at 4); *: ran first at that count (alternating); a "
            "recorder runs beside the workers; RSS: of each worker's process tree, sampled "
            f"every {RSS_EVERY_S} s during the batch"
        )


def print_header(name: str, client: Client, workers: str) -> None:
    """Versions, machine and workers."""
    info = client.redis.info("server")
    print(
        f"{name}: Python {platform.python_version()}, Celery {celery.__version__}, Redis "
        f"{info['redis_version']}, {os.cpu_count()} CPUs; workers: {workers}",
        flush=True,
    )


def print_scaling_header() -> None:
    """The table's column names."""
    print(
        f"{'workers':>7} {'side':<10}{'total s':>8} {'submit s':>8} {'exec/s':>8} "
        f"{'nodes/s':>8} {'x first':>8}   worker RSS",
        flush=True,
    )


def print_scaling_rows(
    count: int,
    rows: Sequence[tuple[Batch, Memory]],
    firsts: Sequence[Batch],
    first_side: str = "bare",
) -> None:
    """One worker count: each side's throughput, its ratio to the first count's, memory; the
    side that ran first is marked with `*`."""
    for (batch, memory), first in zip(rows, firsts, strict=True):
        ratio = batch.nodes_per_s / first.nodes_per_s
        side = f"{batch.side}{'*' if batch.side == first_side else ''}"
        print(
            f"{count:>7} {side:<10}{batch.total_s:>8.2f} {batch.submit_s:>8.2f} "
            f"{batch.executions_per_s:>8.1f} {batch.nodes_per_s:>8.0f} {ratio:>7.2f}x   "
            f"{memory.describe()}",
            flush=True,
        )


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        worker_main(sys.argv[2:])
    else:
        main()
