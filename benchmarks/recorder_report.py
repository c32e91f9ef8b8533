"""The recorder benchmark's results, and printing them as plain-text tables."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from benchmarks.history_backends import Footprint
from benchmarks.report import p50_ms
from benchmarks.timed_history import RecordCall
from storage.events import EventType

BUDGET_BYTES = 1_000_000  # the history budget per execution the footprint is held against


@dataclass(frozen=True)
class Lag:
    """One backend's live run: delays per event and per batch, in seconds."""

    backend: str
    node_lags: list[float]  # node.succeeded: ts -> record() returned (committed)
    node_waits: list[float]  # node.succeeded: ts -> record() called (in the stream, parsed)
    all_lags: list[float]  # every event of the measured executions
    transactions: list[float]  # record() calls holding measured events
    batch_sizes: list[int]


@dataclass(frozen=True)
class Drain:
    """One backend's drain of a pre-filled stream."""

    backend: str
    events: int
    executions: int
    fill_s: float
    drain_s: float
    record_s: float  # inside the store's record()
    first_rate: float  # events/s over the first fifth of the batches
    last_rate: float  # events/s over the last fifth


def lag_of(backend: str, calls: Sequence[RecordCall], measured: set[str]) -> Lag:
    """The measured executions' delays, from the record() calls that stored them."""
    node_lags, node_waits, all_lags, transactions, sizes = [], [], [], [], []
    for call in calls:
        mine = [event for event in call.events if event.execution_id in measured]
        if not mine:
            continue
        transactions.append(call.seconds)
        sizes.append(len(call.events))
        all_lags += [call.committed - event.ts for event in mine]
        nodes = [event for event in mine if event.type == EventType.NODE_SUCCEEDED]
        node_lags += [call.committed - event.ts for event in nodes]
        node_waits += [call.began - event.ts for event in nodes]
    return Lag(backend, node_lags, node_waits, all_lags, transactions, sizes)


def rates_of(calls: Sequence[RecordCall], began: float) -> tuple[float, float]:
    """Events/s over the first and the last fifth of the batches (commit to commit, so reading
    and acknowledging count too); `began` is the wall-clock time the drain started."""
    fifth = max(1, len(calls) // 5)
    first = sum(len(call.events) for call in calls[:fifth])
    first_s = calls[fifth - 1].committed - began
    last = sum(len(call.events) for call in calls[-fifth:])
    last_s = calls[-1].committed - (calls[-fifth - 1].committed if len(calls) > fifth else began)
    return first / first_s, last / last_s


def p99_ms(samples: Sequence[float]) -> float:
    """99th percentile (inclusive method), in ms."""
    if len(samples) < 2:
        return max(samples) * 1000
    return statistics.quantiles(samples, n=100, method="inclusive")[98] * 1000


def print_lags(rows: Sequence[Lag]) -> None:
    """p50/p99 of the lag, of its two parts, and the batches."""
    print(
        f"{'backend':<12}{'events':>7}{'p50':>8}{'p99':>8}{'max':>8}{'wait p50':>10}"
        f"{'wait p99':>10}{'txn p50':>9}{'txn p99':>9}{'batch p50':>11}{'batch max':>11}"
    )
    for row in rows:
        print(
            f"{row.backend:<12}{len(row.node_lags):>7}{p50_ms(row.node_lags):>8.1f}"
            f"{p99_ms(row.node_lags):>8.1f}{max(row.node_lags) * 1000:>8.1f}"
            f"{p50_ms(row.node_waits):>10.1f}{p99_ms(row.node_waits):>10.1f}"
            f"{p50_ms(row.transactions):>9.1f}{p99_ms(row.transactions):>9.1f}"
            f"{statistics.median(row.batch_sizes):>11.0f}{max(row.batch_sizes):>11}"
        )
    for row in rows:
        print(
            f"  {row.backend}, every event type ({len(row.all_lags)} events): p50 "
            f"{p50_ms(row.all_lags):.1f} ms, p99 {p99_ms(row.all_lags):.1f} ms"
        )
    print(
        "  events: node.succeeded events measured; wait: ts -> record() called (in the stream,\n"
        "  read and parsed); txn: one record() call, the store's transaction; batch: events per\n"
        "  record() call. ts has 1 ms resolution (truncated): lags read up to 1 ms high."
    )


def print_throughput(rows: Sequence[Drain], per_execution: int, batch_size: int) -> None:
    """Events and executions recorded per second, and where the time went."""
    first = rows[0]
    print(
        f"\n2. Sustained throughput of one recorder: Recorder.drain() of a pre-filled stream\n"
        f"   ({first.events:,} events = {first.executions:,} executions x {per_execution} "
        f"events, copies of an execution\n   recorded in 1.; batches of {batch_size}; into a "
        "fresh store)"
    )
    print(
        f"{'backend':<12}{'events/s':>10}{'execs/s':>9}{'drain s':>9}{'in record()':>13}"
        f"{'first 1/5':>11}{'last 1/5':>10}{'fill s':>8}"
    )
    for row in rows:
        print(
            f"{row.backend:<12}{row.events / row.drain_s:>10,.0f}"
            f"{row.executions / row.drain_s:>9,.0f}{row.drain_s:>9.2f}"
            f"{row.record_s / row.drain_s:>13.0%}{row.first_rate:>11,.0f}{row.last_rate:>10,.0f}"
            f"{row.fill_s:>8.2f}"
        )
    print(
        "  in record(): share of the drain spent in the store's record(); the rest is XREADGROUP,\n"
        "  parsing and checking events, XACK and XDEL. first/last 1/5: events/s over the first\n"
        "  and last fifth of the batches. fill s: the pipelined XADDs before it (not timed)."
    )


def print_footprints(rows: Sequence[Footprint], nodes: int, per_execution: int) -> None:
    """Bytes per execution: file (or relation) growth, then by table and index."""
    print(f"\n3. Bytes stored per {nodes}-node execution ({per_execution} events each)")
    for row in rows:
        grown = row.per_execution(row.grown)
        label = f"{row.backend}, {row.how}"
        print(
            f"  {label:<40}{grown:>9,.0f} B/execution{grown / per_execution:>7,.0f} B/event"
            f"{grown / BUDGET_BYTES:>8.2%} of 1 MB  ({row.executions:,} executions)"
        )
    for row in rows:
        if row.how.startswith("drained"):
            _print_sizes(row)
    print(
        "  SQLite: growth of the file after PRAGMA wal_checkpoint(TRUNCATE); by table/index:\n"
        "  dbstat page bytes (payload: the rows' own bytes). PostgreSQL: growth of\n"
        "  pg_total_relation_size (each table with its indexes and TOAST), no VACUUM run."
    )


def _print_sizes(row: Footprint) -> None:
    print(f"  {row.backend} by table and index, per execution ({row.how}):")
    header = f"{'relation':>11}" if row.payload is None else f"{'pages':>11}{'payload':>11}"
    print(f"    {'':<34}{header}")
    for name, size in sorted(row.sizes.items(), key=lambda item: -item[1]):
        if size == 0 or row.per_execution(size) < 1:
            continue
        payload = "" if row.payload is None else f"{row.per_execution(row.payload[name]):>9,.0f} B"
        print(f"    {name:<34}{row.per_execution(size):>9,.0f} B{payload}")
