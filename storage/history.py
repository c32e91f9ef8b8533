"""Execution history: the records derived from events, and the store.

`HistoryStore` is the interface and `open_history(url)` opens one: storage/sql_history.py
implements it on SQLite and PostgreSQL, and `open_history("sqlite://")` is the in-memory twin.
The rules that derive the records from events are in storage/history_state.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from storage.cursors import InvalidCursor
from storage.events import Event
from storage.state import ExecutionStatus, NodeStatus

__all__ = [
    "ExecutionRecord",
    "HistoryError",
    "HistoryStore",
    "InvalidCursor",
    "InvalidEvent",
    "NodeRunRecord",
    "Page",
    "SchemaMismatch",
    "open_history",
]

T = TypeVar("T")


class HistoryError(Exception):
    """Something went wrong in the history store."""


class InvalidEvent(HistoryError):
    """An event whose data cannot be recorded; the whole batch is refused."""

    def __init__(self, event_id: str, reason: str) -> None:
        super().__init__(f"event {event_id!r}: {reason}")
        self.event_id = event_id


class SchemaMismatch(HistoryError):
    """The database holds a schema version this code does not know."""


class ExecutionRecord(BaseModel):
    """One execution as history knows it; blueprint fields are "" until execution.queued."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    blueprint_id: str
    blueprint_name: str
    blueprint_version: str | None = None
    blueprint_hash: str | None = None  # the Blueprint as submitted (HistoryStore.blueprint)
    replay_of: str | None = None  # the execution this one replays
    parent_id: str | None = None  # a child execution's parent (docs/children.md)
    parent_node: str | None = None  # and the `blueprint` node there that runs it
    status: ExecutionStatus
    inputs: dict[str, Any] = Field(default_factory=dict)
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    duration_ms: int | None = None
    last_seq: int = 0


class NodeRunRecord(BaseModel):
    """One node of one execution: its latest state over all its attempts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    execution_id: str
    node_id: str
    type: str | None = None
    status: NodeStatus = NodeStatus.PENDING
    attempts: int = 0
    worker: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    duration_ms: int | None = None
    error: dict[str, Any] | None = None
    # what the run used (conductor.model.resources.NodeProfile), from its outcome event
    queue_wait_ms: int | None = None
    cpu_ms: int | None = None
    peak_rss_bytes: int | None = None
    input_bytes: int | None = None
    output_bytes: int | None = None
    depends_on: list[str] | None = None


class Page(BaseModel, Generic[T]):
    """A page of a listing; pass `next_cursor` back for the next one (None: no more)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    items: list[T]
    next_cursor: str | None = None


class HistoryStore(Protocol):
    """Durable execution history, fed by events."""

    def record(self, events: Sequence[Event]) -> int:
        """Store a batch in one transaction and derive state; return how many were new.
        Idempotent by event id. Raises InvalidEvent (nothing stored) for bad event data."""

    def execution(self, execution_id: str) -> ExecutionRecord | None:
        """One execution, or None."""

    def node_runs(self, execution_id: str) -> list[NodeRunRecord]:
        """An execution's node runs, by started_at (never started last), then node_id."""

    def events(
        self, execution_id: str, after_seq: int = 0, limit: int | None = None
    ) -> list[Event]:
        """An execution's events with seq > after_seq, in seq order."""

    def list_executions(
        self,
        status: ExecutionStatus | None = None,
        blueprint_id: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[ExecutionRecord]:
        """Executions, newest first, in pages (keyset on created_at, id)."""

    def keep_for_replay(
        self, blueprints: Mapping[str, str], outputs: Mapping[str, Mapping[str, str]]
    ) -> None:
        """In one transaction: store Blueprint texts by digest (a known digest keeps its
        text), and replace each known execution's node outputs (packed, by node key)."""

    def blueprint(self, digest: str) -> str | None:
        """A kept Blueprint's text, or None."""

    def node_outputs(self, execution_id: str) -> dict[str, str]:
        """An execution's kept node outputs (packed), by node key."""

    def prune(self, older_than_s: float, now: float | None = None) -> int:
        """Delete executions finished more than older_than_s ago, with their node runs,
        outputs and events (and Blueprints no execution uses then); return how many
        executions."""

    def blob_mentions(self) -> list[str]:
        """Stored results, node outputs and event data that mention a blob (the blob
        collector's marks)."""

    def close(self) -> None:
        """Release connections."""


def open_history(url: str) -> HistoryStore:
    """Open the history store at `sqlite:///path`, `sqlite://` (in memory) or
    `postgresql://...`, creating its tables if missing."""
    # Imported here: the implementation imports this module for the records and rules.
    from storage.sql_history import open_sql_history  # noqa: PLC0415

    return open_sql_history(url)
