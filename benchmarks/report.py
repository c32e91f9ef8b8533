"""Printing the benchmark's results as plain-text tables."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from benchmarks.node_work import NodeWork
from benchmarks.redis_stats import RedisCounts
from benchmarks.scenarios import Scenario
from benchmarks.sides import Timing

TOP_COMMANDS = 12


@dataclass(frozen=True)
class Latencies:
    """One scenario's timed runs, per side."""

    scenario: Scenario
    bare: list[Timing]
    conductor: list[Timing]


@dataclass(frozen=True)
class Cost:
    """Redis work of a batch of executions of one scenario on one side."""

    scenario: Scenario
    side: str
    executions: int
    counts: RedisCounts
    client_sends: int

    @property
    def nodes(self) -> int:
        """Nodes (or bare tasks) run in the batch."""
        return self.scenario.nodes * self.executions

    def per_node(self, value: float) -> float:
        """`value` divided by the nodes run."""
        return value / self.nodes


def p50_ms(samples: Sequence[float]) -> float:
    """Median, in ms."""
    return statistics.median(samples) * 1000


def p95_ms(samples: Sequence[float]) -> float:
    """95th percentile (inclusive method), in ms."""
    return statistics.quantiles(samples, n=100, method="inclusive")[94] * 1000


def print_latencies(rows: Sequence[Latencies]) -> None:
    """p50/p95 per side, the conductor/bare ratios, the extra time per node, submit times."""
    print(
        f"{'scenario':<16}{'nodes':>6}{'bare p50':>10}{'bare p95':>10}{'cond p50':>10}"
        f"{'cond p95':>10}{'p50 x':>8}{'p95 x':>8}{'extra ms/node':>15}"
        f"{'submit p50 bare/cond':>22}"
    )
    for row in rows:
        bare, cond = _totals(row.bare), _totals(row.conductor)
        bare50, bare95, cond50, cond95 = p50_ms(bare), p95_ms(bare), p50_ms(cond), p95_ms(cond)
        extra = (cond50 - bare50) / row.scenario.nodes
        submits = f"{p50_ms(_submits(row.bare)):.1f} / {p50_ms(_submits(row.conductor)):.1f}"
        print(
            f"{row.scenario.label:<16}{row.scenario.nodes:>6}{bare50:>10.1f}{bare95:>10.1f}"
            f"{cond50:>10.1f}{cond95:>10.1f}{cond50 / bare50:>8.2f}{cond95 / bare95:>8.2f}"
            f"{extra:>15.2f}{submits:>22}"
        )
    first = rows[0]
    cond50 = p50_ms(_totals(first.conductor))
    print(
        f"\n{first.scenario.label}: Conductor p50 {cond50:.1f} ms absolute "
        f"({cond50 / first.scenario.nodes:.2f} ms per node; bare "
        f"{p50_ms(_totals(first.bare)):.1f} ms)"
    )


def print_node_work(label: str, work: NodeWork) -> None:
    """run_node's time and Redis requests, for inner nodes and for the last (finalizing) one."""
    inner_requests = work.inner_sends / len(work.inner_s)
    last_requests = work.last_sends / len(work.last_s)
    print(
        f"  {label}: inner node p50 {p50_ms(work.inner_s):.2f} ms, {inner_requests:.1f} requests; "
        f"last node (with finalize) p50 {p50_ms(work.last_s):.2f} ms, {last_requests:.1f} requests"
    )


def _totals(timings: Sequence[Timing]) -> list[float]:
    return [timing.total_s for timing in timings]


def _submits(timings: Sequence[Timing]) -> list[float]:
    return [timing.submit_s for timing in timings]


def print_costs(costs: Sequence[Cost], idle: RedisCounts, idle_s: float) -> None:
    """Commands, round trips and bytes per node, then the top commands of each scenario."""
    print(
        f"{'scenario':<16}{'side':<11}{'cmds/node':>10}{'RT/node':>9}{'worker RT/node':>16}"
        f"{'client RT/exec':>16}{'KiB in/node':>13}"
    )
    for cost in costs:
        worker_reads = cost.counts.reads - cost.client_sends
        print(
            f"{cost.scenario.label:<16}{cost.side:<11}"
            f"{cost.per_node(cost.counts.commands):>10.1f}{cost.per_node(cost.counts.reads):>9.1f}"
            f"{cost.per_node(worker_reads):>16.1f}{cost.client_sends / cost.executions:>16.1f}"
            f"{cost.per_node(cost.counts.bytes_in) / 1024:>13.2f}"
        )
    print(
        f"\nidle background (worker alone, {idle_s:.0f} s): "
        f"{idle.commands / idle_s:.1f} commands/s, {idle.reads / idle_s:.1f} reads/s "
        f"({_top(idle.calls, 5)})"
    )
    for label in dict.fromkeys(cost.scenario.label for cost in costs):
        _print_breakdown([cost for cost in costs if cost.scenario.label == label])


def _print_breakdown(costs: Sequence[Cost]) -> None:
    total: Counter[str] = Counter()
    for cost in costs:
        total.update(cost.counts.calls)
    names = [name for name, _ in total.most_common(TOP_COMMANDS)]
    print(f"\n{costs[0].scenario.label}: calls per node")
    print(f"  {'command':<16}" + "".join(f"{cost.side:>11}" for cost in costs))
    for name in names:
        values = "".join(f"{cost.per_node(cost.counts.calls[name]):>11.2f}" for cost in costs)
        print(f"  {name:<16}{values}")


def _top(calls: Counter[str], count: int) -> str:
    return ", ".join(f"{name} {value}" for name, value in calls.most_common(count))
