"""Parked waits: how many executions can wait on one worker slot, what a signal costs, how
late a parked delay wakes (docs/waits.md).

    .venv/bin/python -m benchmarks.waits [--parked 200] [--signals 20] [--delay-ms 6000]

One private Redis and one `conductor worker -c 1`. (1) `--parked` executions each park a
`wait-for-signal` node; then a one-node execution runs on the same single slot: its time
against the same execution with nothing parked. (2) `--signals` parked executions are
signalled one after another: time from the signal to the execution's end, against a two-node
execution's submit-to-end. (3) A parked `delay`: its actual duration against `--delay-ms`.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from conductor.embedded import RedisServer, WorkerProcess
from conductor.model.loader import blueprint_from_data
from conductor.model.settings import Settings
from conductor.services import Services
from conductor.signals import Signals
from conductor.waiting import wait_for_result


def _blueprint(*nodes: dict[str, Any]) -> dict[str, Any]:
    edges = [{"source": a["id"], "target": b["id"]} for a, b in itertools.pairwise(nodes)]
    return {"id": "bench-waits", "name": "Waits", "nodes": list(nodes), "edges": edges}


QUICK = _blueprint({"id": "a", "type": "edit-fields", "parameters": {"values": {"x": 1}}})
PAIR = _blueprint(
    {"id": "a", "type": "edit-fields", "parameters": {"values": {"x": 1}}},
    {"id": "b", "type": "edit-fields", "parameters": {"values": {"y": 2}}},
)
WAIT = _blueprint(
    {"id": "a", "type": "edit-fields", "parameters": {"values": {"x": 1}}},
    {"id": "w", "type": "wait-for-signal", "parameters": {"name": "go"}},
)


class Bench:
    """The private stack and timed runs on it."""

    def __init__(self, root: Path) -> None:
        self.redis = RedisServer(root / "redis").start()
        env = {"CONDUCTOR_DATA_DIR": str(root / "data")}
        self.worker = WorkerProcess(self.redis.url, concurrency=1, env=env, name="waits@%h")
        self.worker.start()
        settings = Settings.from_env({**env, "CONDUCTOR_REDIS_URL": self.redis.url})
        self.services = Services.from_settings(settings)
        self.events = self.services.backend.event_source()

    def submit(self, blueprint: dict[str, Any]) -> str:
        plan = self.services.dispatcher.submit(blueprint_from_data(blueprint))
        return plan.execution_id

    def finish(self, execution_id: str) -> dict[str, Any]:
        return wait_for_result(self.events, self.services.stores, execution_id, 120)

    def timed(self, blueprint: dict[str, Any]) -> float:
        started = time.perf_counter()
        result = self.finish(self.submit(blueprint))
        assert result["status"] == "succeeded", result
        return time.perf_counter() - started

    def park(self, count: int) -> list[str]:
        ids = [self.submit(WAIT) for _ in range(count)]
        state = self.services.stores.state
        while not all(state.parked(i) for i in ids):
            time.sleep(0.05)
        return ids

    def close(self) -> None:
        self.services.close()
        self.worker.stop()
        self.redis.stop()


def main(argv: list[str] | None = None) -> None:
    """Run the three measurements and print them."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parked", type=int, default=200)
    parser.add_argument("--signals", type=int, default=20)
    parser.add_argument("--delay-ms", type=int, default=6000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as root:
        bench = Bench(Path(root))
        try:
            bench.timed(QUICK)  # warm up
            alone = statistics.median(bench.timed(QUICK) for _ in range(5))
            started = time.perf_counter()
            parked = bench.park(args.parked)
            park_s = time.perf_counter() - started
            beside = statistics.median(bench.timed(QUICK) for _ in range(5))
            print(f"{args.parked} executions parked on a -c 1 worker in {park_s:.2f} s")
            alone_ms, beside_ms = alone * 1000, beside * 1000
            print(f"one-node execution: {alone_ms:.0f} ms alone, {beside_ms:.0f} ms beside them")
            pair = statistics.median(bench.timed(PAIR) for _ in range(5))
            signals = Signals(bench.services.dispatcher)
            latencies = []
            for execution_id in parked[: args.signals]:
                sent = time.perf_counter()
                signals.send(execution_id, "go", {"ok": True})
                assert bench.finish(execution_id)["status"] == "succeeded"
                latencies.append(time.perf_counter() - sent)
            print(
                f"signal -> end: median {statistics.median(latencies) * 1000:.0f} ms, "
                f"max {max(latencies) * 1000:.0f} ms (two-node submit -> end: {pair * 1000:.0f} ms)"
            )
            delay = _blueprint({"id": "d", "type": "delay", "parameters": {"ms": args.delay_ms}})
            took = bench.timed(delay)
            print(f"parked delay of {args.delay_ms} ms took {took * 1000:.0f} ms")
        finally:
            bench.close()


if __name__ == "__main__":
    main()
