"""Makespan against the critical path: Conductor's canvas and the best hand-written bare Celery
canvas, on DAGs of `delay` nodes; and a 10,000-node chain (accepted in, first message, nodes/s).

    .venv/bin/python -m benchmarks.makespan [--runs N] [--worker-concurrency C]
                                            [--chain-length L] [--chain-timeout S] [--quick]

One private Redis and one worker (`benchmarks.makespan_worker`: `conductor worker` plus bare
tasks, `bench.sleep` for the bare side's delay). See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from celery import Celery, chain, group
from celery.canvas import Signature
from celery.signals import before_task_publish

from benchmarks.canvas_overhead import Client, make_client
from benchmarks.makespan_worker import SLEEP_TASK, MakespanWorkerProcess
from benchmarks.scenarios import Scenario, linear_blueprint
from benchmarks.sides import BareSide, ConductorSide, Side
from conductor.embedded import RedisServer
from conductor.model.blueprint import Blueprint
from conductor.model.loader import load_blueprint_text
from conductor.waiting import wait_for_result

Edges = list[tuple[str, str]]
Builder = Callable[[Callable[[str], Signature[Any]]], Signature[Any]]


@dataclass(frozen=True)
class Dag:
    """A DAG of delay nodes (id -> ms) and its best hand-written bare canvas, built from a
    function giving each node's signature (the last one announces the end of the run)."""

    name: str
    delays: dict[str, int]
    edges: Edges
    bare: Builder

    def critical_path_ms(self) -> int:
        """The longest sum of delays along a path."""
        finish: dict[str, int] = {}
        remaining = dict(self.delays)
        while remaining:
            for node in list(remaining):
                deps = [source for source, target in self.edges if target == node]
                if all(dep in finish for dep in deps):
                    start = max((finish[dep] for dep in deps), default=0)
                    finish[node] = start + remaining.pop(node)
        return max(finish.values())


def dags() -> list[Dag]:
    """uneven, ladder, diamond, N, wide fan-in (see benchmarks/README.md)."""
    ladder_p = {f"p{i}": (200 if i % 2 else 20) for i in range(1, 5)}
    ladder_q = {f"q{i}": (20 if i % 2 else 200) for i in range(1, 5)}
    # as many branches as the worker's 4 processes: a wider fan-in measures the pool instead
    fan = {f"b{b}n{n}": 240 // b for b in range(1, 5) for n in range(1, b + 1)}
    fan_edges = [(f"b{b}n{n}", f"b{b}n{n + 1}") for b in range(1, 5) for n in range(1, b)]
    return [
        Dag(
            "uneven",
            {"a1": 100, "a2": 100, "a3": 100, "b1": 300, "join": 0},
            [("a1", "a2"), ("a2", "a3"), ("a3", "join"), ("b1", "join")],
            lambda s: chain(group(chain(s("a1"), s("a2"), s("a3")), s("b1")), s("join")),
        ),
        Dag(
            "ladder",
            {**ladder_p, **ladder_q, "join": 0},
            [*_line(list(ladder_p)), *_line(list(ladder_q)), ("p4", "join"), ("q4", "join")],
            lambda s: chain(group(_chain(s, "p", 4), _chain(s, "q", 4)), s("join")),
        ),
        Dag(
            "diamond",
            {"a": 50, "b": 200, "c": 50, "d": 50},
            [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")],
            lambda s: chain(s("a"), group(s("b"), s("c")), s("d")),
        ),
        Dag(
            "N",
            {"a": 200, "b": 20, "c": 20, "d": 20, "end": 0},
            [("a", "c"), ("a", "d"), ("b", "d"), ("c", "end"), ("d", "end")],
            lambda s: chain(group(s("a"), s("b")), group(s("c"), s("d")), s("end")),
        ),
        Dag(
            "wide fan-in",
            {**fan, "join": 0},
            [*fan_edges, *((f"b{b}n{b}", "join") for b in range(1, 5))],
            lambda s: chain(group([_chain(s, f"b{b}n", b) for b in range(1, 5)]), s("join")),
        ),
    ]


def _line(ids: list[str]) -> Edges:
    return list(itertools.pairwise(ids))


def _chain(sig: Callable[[str], Signature[Any]], prefix: str, count: int) -> Signature[Any]:
    steps = [sig(f"{prefix}{i}") for i in range(1, count + 1)]
    return steps[0] if count == 1 else chain(*steps)


def scenario(dag: Dag) -> Scenario:
    """The DAG as a Blueprint of delay nodes and as its bare canvas (last node: the end)."""
    sinks = set(dag.delays) - {source for source, _ in dag.edges}
    assert len(sinks) == 1, f"{dag.name}: one sink, the node that ends the bare run"

    def bare(app: Celery, run_id: str) -> Signature[Any]:
        def sig(node: str) -> Signature[Any]:
            kwargs = {"run_id": run_id} if node in sinks else {}
            return app.signature(
                SLEEP_TASK, args=(dag.delays[node],), kwargs=kwargs, immutable=True
            )

        return dag.bare(sig)

    return Scenario(dag.name, len(dag.delays), delay_blueprint(dag), bare)


def delay_blueprint(dag: Dag) -> Blueprint:
    """Every node a `delay` of its ms."""
    data = {
        "id": f"makespan-{dag.name}",
        "name": dag.name,
        "nodes": [
            {"id": node, "type": "delay", "parameters": {"ms": ms}}
            for node, ms in dag.delays.items()
        ],
        "edges": [{"source": source, "target": target} for source, target in dag.edges],
    }
    return load_blueprint_text(json.dumps(data), json_only=True)


@dataclass(frozen=True)
class Options:
    """Command-line options."""

    runs: int
    worker_concurrency: int
    chain_length: int
    chain_timeout_s: float
    short_runs: int
    dags: bool = True


def parse_options(argv: Sequence[str] | None = None) -> Options:
    """Options; --quick is a smoke run for CI (2 runs, a 1,000-node chain)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.makespan")
    parser.add_argument("--runs", type=int, default=5, help="runs per side and DAG")
    parser.add_argument("--worker-concurrency", type=int, default=4, help="worker processes")
    parser.add_argument("--chain-length", type=int, default=10_000, help="nodes of the chain")
    parser.add_argument(
        "--chain-timeout", type=float, default=600.0, help="seconds the long chain may run"
    )
    parser.add_argument("--chain-only", action="store_true", help="only the chain section")
    parser.add_argument("--quick", action="store_true", help="2 runs, a 1,000-node chain")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.chain_length = 2, min(args.chain_length, 1000)
    if min(args.runs, args.worker_concurrency, args.chain_length) < 1:
        parser.error("--runs, --worker-concurrency and --chain-length must be >= 1")
    return Options(
        args.runs,
        args.worker_concurrency,
        args.chain_length,
        args.chain_timeout,
        args.runs * 4,
        dags=not args.chain_only,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Start Redis and the worker, run every measurement, print the report."""
    options = parse_options(argv)
    with tempfile.TemporaryDirectory(prefix="conductor-makespan-") as tmp:
        root = Path(tmp)
        (root / "redis").mkdir()
        server = RedisServer(root / "redis").start()
        try:
            client = make_client(server.url, {"CONDUCTOR_DATA_DIR": str(root / "data")})
            worker = MakespanWorkerProcess(
                client.url,
                concurrency=options.worker_concurrency,
                env=client.env,
                log_path=root / "worker.log",
            )
            worker.start()
            try:
                print(
                    f"makespan: worker -c {options.worker_concurrency}, {os.cpu_count()} CPUs, "
                    f"{options.runs} runs per side and DAG, interleaved; ms, median (min-max)"
                )
                if options.dags:
                    makespan_section(client, options)
                chain_section(client, options)
            finally:
                worker.kill()
        finally:
            server.stop()


def makespan_section(client: Client, options: Options) -> None:
    """Each DAG on both sides; makespan = submit to result known to the client."""
    sides: list[Side] = [
        BareSide(client.dispatcher.app, client.redis),
        ConductorSide(client.dispatcher, client.dispatcher.stores, client.redis),
    ]
    for side in sides:  # warm-up: imports, connections, the worker's pool
        side.run(scenario(dags()[0]))
    print(f"\n{'DAG':<12}{'critical':>9}  {'side':<10}{'makespan':>22}{'x critical':>12}")
    for dag in dags():
        shape = scenario(dag)
        samples: dict[str, list[float]] = {side.name: [] for side in sides}
        for index in range(options.runs):
            for side in sides if index % 2 == 0 else list(reversed(sides)):
                samples[side.name].append(side.run(shape).total_s * 1000)
        critical = dag.critical_path_ms()
        for name, values in samples.items():
            median = statistics.median(values)
            spread = f"{median:7.0f} ({min(values):.0f}-{max(values):.0f})"
            print(f"{dag.name:<12}{critical:>9}  {name:<10}{spread:>22}{median / critical:>11.2f}x")
        ratio = statistics.median(samples["conductor"]) / statistics.median(samples["bare"])
        print(f"{'':<23}conductor / bare {ratio:.2f}x")


def chain_section(client: Client, options: Options) -> None:
    """The long chain: accepted in, largest message sent while accepting it, nodes/s against
    short chains of 10."""
    # short chains before and after the long one: the machine's load drifts over minutes
    ten = [_chain_run(client, 10, 60.0) for _ in range(options.short_runs // 2)]
    long = _chain_run(client, options.chain_length, options.chain_timeout_s)
    ten += [_chain_run(client, 10, 60.0) for _ in range(options.short_runs // 2)]
    ten_rate = statistics.median(run.nodes_per_s for run in ten)
    print(f"\nchain of {options.chain_length:,} no-op nodes")
    print(f"  accepted (Dispatcher.submit)      {long.accepted_s:8.2f} s")
    print(f"  largest message sent by submit    {long.largest_message_bytes / 1024:8.1f} KiB")
    print(f"  messages sent by submit           {long.messages:8d}")
    finished = "finished" if long.finished == options.chain_length else "TIMED OUT"
    print(f"  ran {long.finished:,} nodes in {long.elapsed_s:.1f} s ({finished})")
    print(f"  nodes/s                           {long.nodes_per_s:8.1f}")
    print(f"  chains of 10 before and after, nodes/s (median of {len(ten)}) {ten_rate:8.1f}")
    print(f"  ratio                             {long.nodes_per_s / ten_rate:8.2f}x")


@dataclass(frozen=True)
class ChainRun:
    """One chain's figures."""

    accepted_s: float
    largest_message_bytes: int
    messages: int
    finished: int
    elapsed_s: float

    @property
    def nodes_per_s(self) -> float:
        """Nodes finished per second, from before the submit."""
        return self.finished / self.elapsed_s


def _chain_run(client: Client, length: int, timeout_s: float) -> ChainRun:
    blueprint = linear_blueprint(length)
    start = time.perf_counter()
    with _published() as sizes:
        plan = client.dispatcher.submit(blueprint, {})
    accepted = time.perf_counter() - start
    stores = client.dispatcher.stores
    # a run still going at the timeout ends as failed (TIMEOUT): the report says how far it got
    wait_for_result(client.redis, stores, plan.execution_id, timeout_s)
    elapsed = time.perf_counter() - start
    stored = stores.state.stored_plan(plan.execution_id)
    finished = len(stored.done) if stored else 0
    return ChainRun(accepted, max(sizes, default=0), len(sizes), finished, elapsed)


@contextmanager
def _published() -> Iterator[list[int]]:
    """Sizes of the task messages' bodies (JSON) published in this process meanwhile."""
    sizes: list[int] = []

    def record(body: Any = None, **_: Any) -> None:
        sizes.append(len(json.dumps(body)))

    before_task_publish.connect(record, weak=False)
    try:
        yield sizes
    finally:
        before_task_publish.disconnect(record)


if __name__ == "__main__":
    main()
