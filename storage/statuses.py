"""Execution and node states (CONTRACT section 8), and the wall clock the stores stamp."""

from __future__ import annotations

import time
from enum import StrEnum


class ExecutionStatus(StrEnum):
    """Execution states (CONTRACT section 8)."""

    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        """Whether no node may start any more."""
        return self in TERMINAL


TERMINAL = frozenset({ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED})
LIVE = frozenset({ExecutionStatus.QUEUED, ExecutionStatus.RUNNING, ExecutionStatus.PAUSED})


class NodeStatus(StrEnum):
    """Node states (CONTRACT section 8)."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


# A node in one of these states does not run again (until a retry reopens the execution).
FINISHED_NODE = frozenset(
    {NodeStatus.SUCCEEDED, NodeStatus.SKIPPED, NodeStatus.FAILED, NodeStatus.CANCELLED}
)


def now_ms() -> int:
    """Wall-clock time in milliseconds."""
    return int(time.time() * 1000)
