"""Priorities: time to the first node of a priority-9 execution behind a backlog of queued
low-priority nodes, with and without priorities.

    .venv/bin/python -m benchmarks.priority [--backlog N] [--runs N] [--concurrency C] [--quick]

One private Redis and one `conductor worker -c C` on a queue of its own. Each run submits an
execution of N independent `delay` nodes (10 ms each: the backlog, all queued at once), then one
of a single `delay` node, and times submit -> that node's start (node.started as the worker
stored it). "with": backlog priority 0, urgent 9; "without": both the default (5), so the urgent
node waits its turn behind the backlog. "idle": the urgent execution on an empty queue, the
physical floor (dispatch plus the worker's pick-up; a busy worker adds up to one node's time).
Between runs the backlog is cancelled and its queue emptied. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import dataclass

import redis

from conductor.control import Control
from conductor.embedded import RedisServer, WorkerProcess
from conductor.model.admission import Admission
from conductor.model.loader import blueprint_from_data
from conductor.model.settings import Settings
from conductor.services import Services
from storage.state import NodeStatus

QUEUE = "bench-priority"
NODE_MS = 10
PRIORITY_SEPARATOR = "\x06\x16"  # kombu's Redis transport: `<queue>\x06\x16<priority>` lists
TIMEOUT_S = 300.0


def delays(count: int, name: str) -> dict[str, object]:
    """`count` independent delay nodes on the benchmark's queue."""
    nodes = [
        {"id": f"d{i}", "type": "delay", "queue": QUEUE, "parameters": {"ms": NODE_MS}}
        for i in range(count)
    ]
    return {"id": name, "name": name, "nodes": nodes}


@dataclass
class Bench:
    """The client side: submits, watches the urgent node, clears the queue between runs."""

    services: Services
    client: redis.Redis

    def first_start_s(self, backlog: int, backlog_priority: int, urgent_priority: int) -> float:
        """Submit the backlog, then the urgent execution; seconds to its node's start."""
        dispatcher = self.services.dispatcher
        low = None
        if backlog:
            model = blueprint_from_data(delays(backlog, "backlog"))
            low = dispatcher.submit(model, admission=Admission(priority=backlog_priority))
        sent = time.time()
        urgent = dispatcher.submit(
            blueprint_from_data(delays(1, "urgent")), admission=Admission(priority=urgent_priority)
        )
        started = self._started_at(urgent.execution_id)
        if low is not None:
            Control(dispatcher).cancel(low.execution_id)
        self._drain()
        return started - sent

    def _started_at(self, execution_id: str) -> float:
        state = self.services.stores.state
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            record = state.snapshot(execution_id, []).nodes.get("d0")
            if record is not None and record.started_ms and record.status is not NodeStatus.PENDING:
                return record.started_ms / 1000
            time.sleep(0.005)
        raise TimeoutError(f"the urgent node of {execution_id} never started")

    def _drain(self) -> None:
        """Empty the queue (the cancelled backlog's messages would only be skipped), then let
        the worker finish what it holds."""
        lists = [QUEUE, *(f"{QUEUE}{PRIORITY_SEPARATOR}{step}" for step in range(1, 10))]
        self.client.delete(*lists)
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=1000, help="queued low-priority nodes")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=2, help="the worker's -c")
    parser.add_argument("--quick", action="store_true", help="backlog 200, one run (smoke)")
    args = parser.parse_args()
    backlog, runs = (200, 1) if args.quick else (args.backlog, args.runs)
    with tempfile.TemporaryDirectory(prefix="conductor-bench-") as tmp, RedisServer() as server:
        env = {"CONDUCTOR_REDIS_URL": server.url, "CONDUCTOR_DATA_DIR": tmp}
        worker = WorkerProcess(
            server.url, concurrency=args.concurrency, queues=[QUEUE], env=env, name="prio@%h"
        ).start()
        services = Services.from_settings(Settings.from_env(env))
        try:
            bench = Bench(services, redis.Redis.from_url(server.url))
            bench.first_start_s(0, 5, 5)  # warm-up: the worker's first task imports the nodes
            samples: dict[str, list[float]] = {"idle": [], "without": [], "with": []}
            for _ in range(runs):
                samples["idle"].append(bench.first_start_s(0, 5, 5))
                samples["without"].append(bench.first_start_s(backlog, 5, 5))
                samples["with"].append(bench.first_start_s(backlog, 0, 9))
        finally:
            services.close()
            worker.stop()
    report(samples, backlog, args.concurrency, runs)


def report(samples: dict[str, list[float]], backlog: int, concurrency: int, runs: int) -> None:
    """The medians and their ratios."""
    median = {side: statistics.median(values) * 1000 for side, values in samples.items()}
    print(
        f"time to the first node of a priority-9 execution behind {backlog} queued "
        f"low-priority {NODE_MS} ms nodes (worker -c {concurrency}, median of {runs} run(s))"
    )
    for side, label in (
        ("idle", "empty queue (floor)"),
        ("without", "without priorities"),
        ("with", "with priorities"),
    ):
        print(f"  {label:<22} {median[side]:9.1f} ms")
    print(f"without / with priorities: {median['without'] / median['with']:.2f}x")
    print(f"with priorities / empty queue: {median['with'] / median['idle']:.2f}x")


if __name__ == "__main__":
    main()
