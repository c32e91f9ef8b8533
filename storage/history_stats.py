"""Aggregates over the SQL history store for metrics: each one query with a bounded answer.

The rows are counted in the database (a GROUP BY with one conditional sum per histogram bucket),
so a scrape ships (node types x buckets) numbers, never node runs. The cost is one pass over
the `executions` index by status and one over `node_runs`, bounded by `conductor history prune`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict

from storage.sql_history import SqlHistoryStore
from storage.sql_schema import executions, node_runs
from storage.state import ExecutionStatus, NodeStatus

# Upper bounds (ms) of the node-duration histogram buckets; +Inf is implied.
DURATION_BUCKETS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000)
_FINISHED = (NodeStatus.SUCCEEDED.value, NodeStatus.FAILED.value)


class NodeDurations(BaseModel):
    """A cumulative histogram of one node type's runs with one outcome (succeeded or failed)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    status: NodeStatus
    bucket_counts: list[int]  # runs with duration <= each of the bounds, in order
    count: int
    sum_ms: float


def execution_counts(store: SqlHistoryStore) -> dict[ExecutionStatus, int]:
    """How many recorded executions are in each status (every status, zero included)."""
    query = sa.select(executions.c.status, sa.func.count()).group_by(executions.c.status)
    with store.engine.connect() as conn:
        found = {str(row[0]): int(row[1]) for row in conn.execute(query)}
    return {status: found.get(status.value, 0) for status in ExecutionStatus}


def node_durations(
    store: SqlHistoryStore, bounds_ms: Sequence[int] = DURATION_BUCKETS_MS
) -> list[NodeDurations]:
    """Duration histograms of finished node runs, one per node type and outcome."""
    runs = node_runs.c
    # A failure's event carries no duration: it counts from the first start to the failure.
    duration = sa.func.coalesce(runs.duration_ms, (runs.finished_at - runs.started_at) * 1000)
    buckets = [sa.func.sum(sa.case((duration <= bound, 1), else_=0)) for bound in bounds_ms]
    query = (
        sa.select(runs.type, runs.status, sa.func.count(), sa.func.sum(duration), *buckets)
        .where(runs.type.is_not(None), duration.is_not(None), runs.status.in_(_FINISHED))
        .group_by(runs.type, runs.status)
        .order_by(runs.type, runs.status)
    )
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        NodeDurations(
            type=str(row[0]),
            status=NodeStatus(row[1]),
            count=int(row[2]),
            sum_ms=float(row[3] or 0),
            bucket_counts=[int(value or 0) for value in row[4:]],
        )
        for row in rows
    ]


class NodeFigures(BaseModel):
    """A cumulative histogram of one figure of one node type's profiled runs (ms)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    bucket_counts: list[int]
    count: int
    sum_ms: float


def node_figures(
    store: SqlHistoryStore, figure: str, bounds_ms: Sequence[int] = DURATION_BUCKETS_MS
) -> list[NodeFigures]:
    """Histograms of one profile figure (`queue_wait_ms` or `cpu_ms`), one per node type, over
    the runs that recorded it."""
    runs = node_runs.c
    value = runs[figure]
    buckets = [sa.func.sum(sa.case((value <= bound, 1), else_=0)) for bound in bounds_ms]
    query = (
        sa.select(runs.type, sa.func.count(), sa.func.sum(value), *buckets)
        .where(runs.type.is_not(None), value.is_not(None))
        .group_by(runs.type)
        .order_by(runs.type)
    )
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        NodeFigures(
            type=str(row[0]),
            count=int(row[1]),
            sum_ms=float(row[2] or 0),
            bucket_counts=[int(count or 0) for count in row[3:]],
        )
        for row in rows
    ]
