"""A history store that notes when each `record` call began and when its commit returned."""

from __future__ import annotations

import threading
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from storage.events import Event, EventType
from storage.history import ExecutionRecord, HistoryStore, NodeRunRecord, Page
from storage.state import ExecutionStatus


class RecordingTimedOut(RuntimeError):
    """The recorder did not store every awaited execution's end in time."""


@dataclass(frozen=True)
class RecordCall:
    """One `record` call: wall-clock time before it and after its commit, and its events."""

    began: float
    committed: float
    events: tuple[Event, ...]

    @property
    def seconds(self) -> float:
        """How long the store's transaction took."""
        return self.committed - self.began


class TimedHistory:
    """Wraps a HistoryStore for the Recorder; two clock reads and a list append per batch."""

    def __init__(self, inner: HistoryStore) -> None:
        self.inner = inner
        self.calls: list[RecordCall] = []
        self.ended: dict[str, EventType] = {}  # execution id -> its terminal event's type
        self._changed = threading.Condition()

    def record(self, events: Sequence[Event]) -> int:
        """Record through the inner store; note the times once its commit is done."""
        began = time.time()
        stored = self.inner.record(events)
        committed = time.time()
        with self._changed:
            self.calls.append(RecordCall(began, committed, tuple(events)))
            self.ended.update((e.execution_id, e.type) for e in events if e.type.is_terminal)
            self._changed.notify_all()
        return stored

    def wait_until_ended(self, execution_ids: Collection[str], timeout_s: float) -> None:
        """Block until every one of `execution_ids` has its terminal event recorded."""
        with self._changed:
            if not self._changed.wait_for(
                lambda: all(key in self.ended for key in execution_ids), timeout_s
            ):
                missing = sum(key not in self.ended for key in execution_ids)
                raise RecordingTimedOut(f"{missing} executions not recorded within {timeout_s} s")

    def execution(self, execution_id: str) -> ExecutionRecord | None:
        """As the inner store."""
        return self.inner.execution(execution_id)

    def node_runs(self, execution_id: str) -> list[NodeRunRecord]:
        """As the inner store."""
        return self.inner.node_runs(execution_id)

    def blob_mentions(self) -> list[str]:
        """As the inner store."""
        return self.inner.blob_mentions()

    def events(
        self, execution_id: str, after_seq: int = 0, limit: int | None = None
    ) -> list[Event]:
        """As the inner store."""
        return self.inner.events(execution_id, after_seq, limit)

    def list_executions(
        self,
        status: ExecutionStatus | None = None,
        blueprint_id: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[ExecutionRecord]:
        """As the inner store."""
        return self.inner.list_executions(status, blueprint_id, limit, cursor)

    def keep_for_replay(
        self, blueprints: Mapping[str, str], outputs: Mapping[str, Mapping[str, str]]
    ) -> None:
        """As the inner store."""
        self.inner.keep_for_replay(blueprints, outputs)

    def blueprint(self, digest: str) -> str | None:
        """As the inner store."""
        return self.inner.blueprint(digest)

    def node_outputs(self, execution_id: str) -> dict[str, str]:
        """As the inner store."""
        return self.inner.node_outputs(execution_id)

    def prune(self, older_than_s: float, now: float | None = None) -> int:
        """As the inner store."""
        return self.inner.prune(older_than_s, now)

    def close(self) -> None:
        """As the inner store."""
        self.inner.close()
