"""Events (CONTRACT section 7): what executions and nodes did, in order (pure data)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class EventType(StrEnum):
    """Every event type."""

    EXECUTION_QUEUED = "execution.queued"
    EXECUTION_STARTED = "execution.started"
    EXECUTION_PAUSED = "execution.paused"
    EXECUTION_RESUMED = "execution.resumed"
    EXECUTION_CANCELLED = "execution.cancelled"
    EXECUTION_SUCCEEDED = "execution.succeeded"
    EXECUTION_FAILED = "execution.failed"
    NODE_STARTED = "node.started"
    NODE_PROGRESS = "node.progress"
    NODE_SUCCEEDED = "node.succeeded"
    NODE_FAILED = "node.failed"
    NODE_RETRYING = "node.retrying"
    NODE_SKIPPED = "node.skipped"
    NODE_CACHED = "node.cached"

    @property
    def is_terminal(self) -> bool:
        """Whether this event ends its execution."""
        return self in TERMINAL_EVENTS


TERMINAL_EVENTS = frozenset(
    {EventType.EXECUTION_SUCCEEDED, EventType.EXECUTION_FAILED, EventType.EXECUTION_CANCELLED}
)


class Event(BaseModel):
    """One event: `seq` increases by one per execution, from 1; `ts` is Unix time in seconds.

    `data` by type:
    - execution.queued: blueprint_id, blueprint_name, blueprint_version, inputs, nodes (count),
      blueprint_hash (the archived Blueprint), replay_of (the execution it replays)
    - execution.started / paused / resumed: {}
    - execution.succeeded / failed / cancelled: status, error ({code, message, nodeId} or
      null), duration_ms, result (the result object, or a blob reference when large),
      cancelled (the nodes it ended before their outcome)
    - node.started: attempt, worker, type
    - node.succeeded / skipped: duration_ms
    - node.failed: error, settled (true when the failure became the node's output)
    - node.retrying: attempt, error, retry_in_s
    - node.progress: progress (0..1), message
    - node.cached: duration_ms

    The shapes are defined once, as types, in storage/event_data.py.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    execution_id: str
    seq: int = Field(ge=1)
    type: EventType
    node_id: str | None = None
    ts: float
    data: dict[str, Any] = Field(default_factory=dict)
