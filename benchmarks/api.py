"""The HTTP API: submissions per second it accepts, and POST -> first node.started.

    .venv/bin/python -m benchmarks.api [--runs N] [--burst N] [--threads T] [--quick]

One private Redis, one worker (`benchmarks.worker`: Conductor's tasks plus bare ones), a
recorder and one `conductor api` process. Bare Celery in the same run: `send_task` of a task
that announces its start, from the same client process. Latency samples alternate between the
sides (one each, the first side switching every pair). See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import redis

from benchmarks.recording import recorder
from benchmarks.scenarios import linear_blueprint
from benchmarks.worker import DONE_TASK, BenchWorkerProcess, done_channel
from conductor.embedded import ApiProcess, RedisServer
from conductor.model.settings import Settings
from workers.app import create_app

TIMEOUT_S = 30.0
_ENDS = frozenset({"execution.succeeded", "execution.failed", "execution.cancelled"})


class FirstStarts:
    """Wall-clock times of each execution's first node.started, from live pub/sub."""

    def __init__(self, client: redis.Redis) -> None:
        self.pubsub = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
        self.pubsub.psubscribe("conductor:events:*")
        self.seen: dict[str, float] = {}
        self.ended: set[str] = set()
        self.lock = threading.Condition()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._listen, daemon=True)
        self.thread.start()

    def _listen(self) -> None:
        while not self.stop.is_set():
            message = self.pubsub.get_message(timeout=0.2)
            if not message:
                continue
            event = json.loads(message["data"])
            with self.lock:
                if event["type"] == "node.started" and event["execution_id"] not in self.seen:
                    self.seen[event["execution_id"]] = time.time()
                if event["type"].startswith("execution.") and event["type"] in _ENDS:
                    self.ended.add(event["execution_id"])
                self.lock.notify_all()

    def wait(self, execution_id: str) -> float:
        """When the execution's first node started (as received here); returns once the
        execution ended, so the next sample starts on an idle worker."""
        with self.lock:
            if not self.lock.wait_for(lambda: execution_id in self.ended, TIMEOUT_S):
                raise TimeoutError(f"{execution_id} did not end")
            return self.seen[execution_id]

    def close(self) -> None:
        """Stop listening."""
        self.stop.set()
        self.thread.join()
        self.pubsub.close()


def percentile(samples: list[float], fraction: float) -> float:
    """Nearest-rank percentile, in ms."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


def conductor_latency(http: httpx.Client, body: dict[str, Any], starts: FirstStarts) -> float:
    """POST -> its first node.started (one execution in flight)."""
    sent = time.time()
    response = http.post("/v1/executions", json=body)
    response.raise_for_status()
    return starts.wait(response.json()["id"]) - sent


def bare_latency(app: Any, client: redis.Redis) -> float:
    """send_task -> the task announces it started."""
    run_id = str(uuid.uuid4())
    pubsub = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
    pubsub.subscribe(done_channel(run_id))
    try:
        sent = time.time()
        app.send_task(DONE_TASK, args=(run_id,), ignore_result=True)
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            if pubsub.get_message(timeout=1.0):
                return time.time() - sent
        raise TimeoutError("bare task did not run")
    finally:
        pubsub.close()


def throughput(submit: Callable[[], object], count: int, threads: int) -> float:
    """Submissions per second with `threads` clients."""
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda _: submit(), range(count)))
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100, help="latency samples per side")
    parser.add_argument("--burst", type=int, default=300, help="submissions per throughput run")
    parser.add_argument("--threads", type=int, default=4, help="client threads for throughput")
    parser.add_argument("--quick", action="store_true", help="10 samples, bursts of 30")
    options = parser.parse_args()
    if options.quick:
        options.runs, options.burst = 10, 30
    root = Path(tempfile.mkdtemp(prefix="conductor-bench-api-"))
    body = {"blueprint": linear_blueprint(10).model_dump(mode="json"), "inputs": {}}
    with RedisServer(root / "redis") as server:
        env = {"CONDUCTOR_REDIS_URL": server.url, "CONDUCTOR_DATA_DIR": str(root)}
        api = ApiProcess(env)
        with BenchWorkerProcess(server.url, concurrency=2, env=env), recorder(env, root):
            api.start()
            client = redis.Redis.from_url(server.url)
            app = create_app(Settings.from_env(env))
            starts = FirstStarts(client)
            with httpx.Client(base_url=api.url, timeout=TIMEOUT_S) as http:
                for _ in range(10):  # warm both sides up
                    conductor_latency(http, body, starts)
                    bare_latency(app, client)
                ours, bare = [], []
                for index in range(options.runs):  # interleaved, alternating which goes first
                    for side in (0, 1) if index % 2 == 0 else (1, 0):
                        if side == 0:
                            ours.append(conductor_latency(http, body, starts))
                        else:
                            bare.append(bare_latency(app, client))
                api_rate = throughput(
                    lambda: http.post("/v1/executions", json=body).raise_for_status(),
                    options.burst, options.threads,
                )  # fmt: skip
                bare_rate = throughput(
                    lambda: app.send_task(DONE_TASK, args=("x",), ignore_result=True),
                    options.burst, options.threads,
                )  # fmt: skip
            starts.close()
            api.stop()
    print(
        f"api: {options.runs} samples per side (interleaved), 2 CPUs, worker -c 2, a recorder, "
        "one uvicorn process"
    )
    print(f"{'':34}{'p50 ms':>9}{'p99 ms':>9}")
    for label, samples in (
        ("POST -> first node.started", ours),
        ("bare send_task -> task runs", bare),
    ):
        print(f"{label:34}{percentile(samples, 0.5):9.1f}{percentile(samples, 0.99):9.1f}")
    print(f"ratio p50 {statistics.median(ours) / statistics.median(bare):.2f}")
    print(
        f"submissions/s accepted ({options.threads} client threads, 10-node Blueprint): "
        f"API {api_rate:.0f}, bare send_task {bare_rate:.0f} (ratio {api_rate / bare_rate:.2f})"
    )


if __name__ == "__main__":
    main()
