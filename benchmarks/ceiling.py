"""The ceiling: node transitions per second with no-op nodes against bare Celery tasks per second.

    .venv/bin/python -m benchmarks.ceiling [--executions 300] [--rounds 2] [--workers 1]
                                           [--worker-concurrency 2] [--quick]

One private Redis and the same worker processes for both sides (`benchmarks.worker`: Conductor's
tasks plus bare no-op tasks on the same app and settings). Each batch submits every execution at
once and ends when the last is known done. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from benchmarks.recording import recorder
from benchmarks.scaling import (
    SIDES,
    BareCanvas,
    Batch,
    Client,
    Memory,
    bare_batch,
    conductor_batch,
    make_client,
    measured,
    print_header,
    running_workers,
)
from benchmarks.scenarios import NOOP_NODE, bare_chain, bare_fan, fan_blueprint, linear_blueprint
from benchmarks.worker import BenchWorkerProcess
from conductor.embedded import RedisServer
from conductor.model.blueprint import Blueprint

AIM = 0.8


@dataclass(frozen=True)
class Shape:
    """A 10-node shape, as a Blueprint of no-op nodes and as a bare canvas of as many tasks."""

    label: str
    blueprint: Blueprint
    bare_canvas: BareCanvas


def shapes() -> list[Shape]:
    """A chain of 10, and 1 -> 8 -> 1 (a chord on Redis)."""
    return [
        Shape("chain of 10", linear_blueprint(10), lambda a, r: bare_chain(a, r, 10)),
        Shape("1->8->1", fan_blueprint(8), lambda a, r: bare_fan(a, r, 8)),
    ]


@dataclass(frozen=True)
class Options:
    """Command-line options."""

    executions: int
    rounds: int
    workers: int
    worker_concurrency: int
    warmup: int


def parse_options(argv: Sequence[str] | None = None) -> Options:
    """Options from the command line; --quick is a smoke test of a few seconds."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ceiling")
    parser.add_argument("--executions", type=int, default=300, help="executions per batch")
    parser.add_argument("--rounds", type=int, default=2, help="batches per side and shape")
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument("--worker-concurrency", type=int, default=2, help="-c of each worker")
    parser.add_argument("--warmup", type=int, default=20, help="executions per side, untimed")
    parser.add_argument("--quick", action="store_true", help="20 executions, one round")
    args = parser.parse_args(argv)
    if args.quick:
        args.executions, args.rounds, args.warmup = 20, 1, 4
    if min(args.executions, args.rounds, args.workers, args.worker_concurrency) < 1:
        parser.error("counts must be >= 1")
    return Options(
        args.executions, args.rounds, args.workers, args.worker_concurrency, max(args.warmup, 0)
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Both sides on every shape, interleaved, and the table."""
    options = parse_options(argv)
    with tempfile.TemporaryDirectory(prefix="conductor-bench-") as tmp, RedisServer() as server:
        client = make_client(server.url, {"CONDUCTOR_DATA_DIR": str(Path(tmp) / "data")})
        print_header("ceiling", client, f"benchmarks.worker -c {options.worker_concurrency}")
        print(
            f"{options.executions} executions at once per batch, {options.rounds} batches per "
            f"side and shape (alternating which side goes first), {options.workers} worker "
            f"process(es) and a recorder; no-op node: {NOOP_NODE['type']} "
            f"{NOOP_NODE['parameters']}, bare task: bench.noop\n"
        )
        workers = running_workers(
            client, options.workers, options.worker_concurrency, Path(tmp), BenchWorkerProcess
        )
        with recorder(client.env, Path(tmp)), workers as running:
            for shape in shapes():
                for side in SIDES if options.warmup else ():
                    run_batch(client, shape, side, options.warmup)
                batches = [
                    measured(running, partial(run_batch, client, shape, side, options.executions))
                    for index in range(options.rounds)
                    for side in (SIDES if index % 2 == 0 else SIDES[::-1])
                ]
                print_ceiling(shape.label, batches)


def run_batch(client: Client, shape: Shape, side: str, executions: int) -> Batch:
    """One timed batch of `shape` on `side`."""
    if side == "bare":
        return bare_batch(client, shape.bare_canvas, executions, len(shape.blueprint.nodes))
    return conductor_batch(client, shape.blueprint, executions)


def print_ceiling(label: str, batches: Sequence[tuple[Batch, Memory]]) -> None:
    """Best and mean nodes/s per side, worker memory, and Conductor's best over bare's."""
    print(label)
    best: dict[str, float] = {}
    for side in SIDES:
        mine = [(batch, memory) for batch, memory in batches if batch.side == side]
        rates = [batch.nodes_per_s for batch, _ in mine]
        best[side] = max(rates)
        memory = Memory(
            max(m.max_bytes for _, m in mine), statistics.fmean(m.mean_bytes for _, m in mine)
        )
        print(
            f"  {side:<9} nodes/s best {max(rates):7.0f}  mean {statistics.fmean(rates):7.0f}  "
            f"exec/s best {max(rates) / mine[0][0].nodes:6.1f}  submit s mean "
            f"{statistics.fmean(batch.submit_s for batch, _ in mine):5.2f}  "
            f"worker RSS {memory.describe()}",
            flush=True,
        )
    ratio = best["conductor"] / best["bare"]
    print(f"  conductor / bare (best): {ratio:.2f}x (aim >= {AIM}x)\n", flush=True)


if __name__ == "__main__":
    main()
