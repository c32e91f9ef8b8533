"""The rules that derive execution history from events.

Events may arrive late, twice or out of order: every rule below is a merge that only moves
forward, so the same set of events gives the same records whatever the order.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from storage.events import Event, EventType
from storage.history import ExecutionRecord, InvalidEvent, NodeRunRecord
from storage.state import ExecutionStatus, NodeStatus

# ---- state derivation -----------------------------------------------------------------------
# The event with the higher seq sets the state, whatever the arrival order: seq is the order in
# which the state changed in Redis (a retry may take a failed execution or node back to
# running). Ranks tell final states (2) from the rest.

EXECUTION_RANK = {
    ExecutionStatus.QUEUED: 0,
    ExecutionStatus.RUNNING: 1,
    ExecutionStatus.PAUSED: 1,
    ExecutionStatus.SUCCEEDED: 2,
    ExecutionStatus.FAILED: 2,
    ExecutionStatus.CANCELLED: 2,
}
NODE_RANK = {
    NodeStatus.PENDING: 0,
    NodeStatus.RUNNING: 1,
    NodeStatus.SUCCEEDED: 2,
    NodeStatus.FAILED: 2,
    NodeStatus.SKIPPED: 2,
    NodeStatus.CANCELLED: 2,
}
EXECUTION_STATUS_OF = {
    EventType.EXECUTION_QUEUED: ExecutionStatus.QUEUED,
    EventType.EXECUTION_STARTED: ExecutionStatus.RUNNING,
    EventType.EXECUTION_RESUMED: ExecutionStatus.RUNNING,
    EventType.EXECUTION_PAUSED: ExecutionStatus.PAUSED,
    EventType.EXECUTION_SUCCEEDED: ExecutionStatus.SUCCEEDED,
    EventType.EXECUTION_FAILED: ExecutionStatus.FAILED,
    EventType.EXECUTION_CANCELLED: ExecutionStatus.CANCELLED,
}
NODE_OUTCOME_OF = {
    EventType.NODE_SUCCEEDED: NodeStatus.SUCCEEDED,
    EventType.NODE_CACHED: NodeStatus.SUCCEEDED,
    EventType.NODE_SKIPPED: NodeStatus.SKIPPED,
    EventType.NODE_FAILED: NodeStatus.FAILED,
}
# Events that create or change a node run (node.progress changes nothing).
NODE_STATE_EVENTS = frozenset(NODE_OUTCOME_OF) | {EventType.NODE_STARTED, EventType.NODE_RETRYING}


class _Data(BaseModel):
    # Fields not read here are ignored, so a newer emitter's additions do not jam the recorder.
    model_config = ConfigDict(extra="ignore", frozen=True)


class _QueuedData(_Data):
    blueprint_id: str = Field(min_length=1)
    blueprint_name: str
    blueprint_version: str | None = None
    blueprint_hash: str | None = None
    replay_of: str | None = None
    parent_id: str | None = None
    parent_node: str | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)


class _EndedData(_Data):
    error: dict[str, Any] | None = None
    duration_ms: float | None = None
    result: dict[str, Any] | None = None
    cancelled: list[str] = Field(default_factory=list)  # nodes it ended before their outcome


class _NodeStartedData(_Data):
    attempt: int = Field(default=1, ge=0)
    worker: str | None = None
    type: str | None = None


class _NodeRetryingData(_Data):
    attempt: int = Field(default=0, ge=0)
    error: dict[str, Any] | None = None


class _ResumedData(_Data):
    retry: bool = False
    # the nodes a retry sent back to pending (a count or {} from older or empty emitters)
    nodes: list[str] | int | dict[str, Any] = Field(default_factory=list)

    @property
    def reset(self) -> list[str]:
        """The node runs this retry starts again."""
        return self.nodes if self.retry and isinstance(self.nodes, list) else []


class _NodeOutcomeData(_Data):
    error: dict[str, Any] | None = None
    duration_ms: float | None = None
    profile: dict[str, Any] | None = None  # kept as given: a newer worker may add fields


_DATA_MODELS: dict[EventType, type[_Data]] = {
    EventType.EXECUTION_QUEUED: _QueuedData,
    EventType.EXECUTION_SUCCEEDED: _EndedData,
    EventType.EXECUTION_FAILED: _EndedData,
    EventType.EXECUTION_CANCELLED: _EndedData,
    EventType.NODE_STARTED: _NodeStartedData,
    EventType.NODE_RETRYING: _NodeRetryingData,
    EventType.EXECUTION_RESUMED: _ResumedData,
    **dict.fromkeys(NODE_OUTCOME_OF, _NodeOutcomeData),
}


def node_targets(event: Event) -> list[str]:
    """The node runs an event changes: its own node's, or those a retry sent back to pending."""
    if event.node_id and event.type in NODE_STATE_EVENTS:
        return [event.node_id]
    if event.type == EventType.EXECUTION_RESUMED:
        data = _data(event)
        return data.reset if isinstance(data, _ResumedData) else []
    if event.type.is_terminal:
        data = _data(event)
        return data.cancelled if isinstance(data, _EndedData) else []
    return []


def _data(event: Event) -> _Data:
    if event.type.startswith("node.") and not event.node_id:
        raise InvalidEvent(event.id, f"{event.type} without a node_id")
    model = _DATA_MODELS.get(event.type, _Data)
    try:
        return model.model_validate(event.data)
    except ValidationError as error:
        details = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise InvalidEvent(event.id, f"{event.type} data: {details}") from None


def check_event(event: Event) -> None:
    """Raise InvalidEvent if `record` would refuse this event (lets a recorder set it aside)."""
    _data(event)


def _earliest(known: float | None, ts: float) -> float:
    return ts if known is None else min(known, ts)


def _ms(value: float | None) -> int | None:
    return None if value is None else round(value)


class ExecutionState(BaseModel):
    """An execution record plus what merging needs: the seq of the event that set its status."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    record: ExecutionRecord
    status_seq: int = 0

    @classmethod
    def placeholder(cls, execution_id: str, ts: float) -> ExecutionState:
        """An execution known only from events that came before its execution.queued."""
        record = ExecutionRecord(
            id=execution_id,
            blueprint_id="",
            blueprint_name="",
            status=ExecutionStatus.QUEUED,
            created_at=ts,
        )
        return cls(record=record)

    @property
    def queued_seen(self) -> bool:
        """Whether execution.queued has filled in the blueprint fields."""
        return bool(self.record.blueprint_id)

    def apply(self, event: Event) -> ExecutionState:
        """This state with one more event merged in (any order, any number of times)."""
        data, record = _data(event), self.record
        update: dict[str, Any] = {"last_seq": max(record.last_seq, event.seq)}
        if isinstance(data, _QueuedData):
            update.update(data.model_dump())
            update["created_at"] = (
                min(record.created_at, event.ts) if self.queued_seen else event.ts
            )
        elif not self.queued_seen:
            update["created_at"] = min(record.created_at, event.ts)
        if event.type == EventType.EXECUTION_STARTED:
            update["started_at"] = _earliest(record.started_at, event.ts)
        status_seq = self.status_seq
        new = EXECUTION_STATUS_OF.get(event.type)
        if new is not None and event.seq > status_seq:
            status_seq = event.seq
            update["status"] = new
            # a retry takes a finished execution back to running: its old ending goes
            ending = data if isinstance(data, _EndedData) else _EndedData()
            update.update(
                finished_at=event.ts if isinstance(data, _EndedData) else None,
                duration_ms=_ms(ending.duration_ms),
                result=ending.result,
                error=ending.error,
            )
        return ExecutionState(record=record.model_copy(update=update), status_seq=status_seq)


class NodeRunState(BaseModel):
    """A node-run record plus the seqs that decide which event's fields it keeps."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    record: NodeRunRecord
    status_seq: int = 0
    start_seq: int = 0
    error_seq: int = 0

    @classmethod
    def empty(cls, execution_id: str, node_id: str) -> NodeRunState:
        """A node run no event has touched yet."""
        return cls(record=NodeRunRecord(execution_id=execution_id, node_id=node_id))

    def apply(self, event: Event) -> NodeRunState:
        """This state with one more node event merged in (any order, any number of times)."""
        data = _data(event)
        if isinstance(data, _NodeStartedData):
            return self._started(event, data)
        if isinstance(data, _NodeRetryingData):
            return self._retrying(event, data)
        if isinstance(data, _NodeOutcomeData):
            return self._outcome(event, data)
        if isinstance(data, _ResumedData):
            return self._reset(event)
        if isinstance(data, _EndedData):
            return self._drained(event)
        return self

    def _drained(self, event: Event) -> NodeRunState:
        """The execution ended (failed or cancelled) before this run's outcome: cancelled."""
        if not self._wins(event.seq) or self.record.status in NODE_OUTCOME_OF.values():
            return self
        update = {"status": NodeStatus.CANCELLED, "finished_at": event.ts}
        record = self.record.model_copy(update=update)
        return self.model_copy(update={"record": record, "status_seq": event.seq})

    def _reset(self, event: Event) -> NodeRunState:
        """A retry sent this run back to pending: its ending and error go, as in Redis."""
        if not self._wins(event.seq):
            return self
        update: dict[str, Any] = {
            "status": NodeStatus.PENDING,
            "finished_at": None,
            "duration_ms": None,
        }
        states = {"status_seq": event.seq}
        if event.seq > self.error_seq:
            update["error"] = None
            states["error_seq"] = event.seq
        record = self.record.model_copy(update=update)
        return self.model_copy(update={"record": record, **states})

    def _wins(self, seq: int) -> bool:
        return seq > self.status_seq

    def cancelled_by(self, execution: ExecutionState) -> NodeRunState:
        """A run still pending or running when its execution was cancelled ends cancelled. It
        keeps the seq of its own latest event, so one of its events that comes late (but
        before the cancel) still wins, and the cascade is applied again after it."""
        cancelled = execution.record.status is ExecutionStatus.CANCELLED
        if not cancelled or self.record.status in NODE_OUTCOME_OF.values():
            return self  # (a run cancelled before is cancelled again: the latest cancel's time)
        if self.status_seq >= execution.status_seq:
            return self
        record = self.record.model_copy(
            update={"status": NodeStatus.CANCELLED, "finished_at": execution.record.finished_at}
        )
        return self.model_copy(update={"record": record})

    def _started(self, event: Event, data: _NodeStartedData) -> NodeRunState:
        record, states = self.record, dict[str, int]()
        update: dict[str, Any] = {
            "attempts": max(record.attempts, data.attempt),
            "started_at": event.ts
            if record.started_at is None
            else min(record.started_at, event.ts),
        }
        if event.seq > self.start_seq:  # the latest attempt names the worker
            update.update(worker=data.worker, type=data.type)
            states["start_seq"] = event.seq
        if self._wins(event.seq):  # a new attempt (after a retry: the old ending goes)
            update.update(status=NodeStatus.RUNNING, finished_at=None, duration_ms=None)
            states["status_seq"] = event.seq
        return self.model_copy(update={"record": record.model_copy(update=update), **states})

    def _retrying(self, event: Event, data: _NodeRetryingData) -> NodeRunState:
        record, states = self.record, dict[str, int]()
        update: dict[str, Any] = {"attempts": max(record.attempts, data.attempt)}
        # The error of the latest attempt or outcome (by seq) is the run's error.
        if event.seq > self.error_seq:
            update["error"] = data.error
            states["error_seq"] = event.seq
        return self.model_copy(update={"record": record.model_copy(update=update), **states})

    def _outcome(self, event: Event, data: _NodeOutcomeData) -> NodeRunState:
        status = NODE_OUTCOME_OF[event.type]
        if not self._wins(event.seq):
            return self
        update = {"status": status, "finished_at": event.ts, "duration_ms": _ms(data.duration_ms)}
        update.update(profile_fields(data.profile))
        states = {"status_seq": event.seq}
        if event.seq > self.error_seq:  # an outcome's error (even none) replaces older ones
            update["error"] = data.error
            states["error_seq"] = event.seq
        record = self.record.model_copy(update=update)
        return self.model_copy(update={"record": record, **states})


PROFILE_NUMBERS = frozenset(
    {"queue_wait_ms", "cpu_ms", "peak_rss_bytes", "input_bytes", "output_bytes"}
)


def profile_numbers(profile: dict[str, Any] | None) -> dict[str, int | None]:
    """A run's profile figures (None where it says nothing usable: each a whole number)."""
    found = profile or {}
    return {
        name: value if isinstance(value, int) and not isinstance(value, bool) else None
        for name in sorted(PROFILE_NUMBERS)
        for value in [found.get(name)]
    }


def profile_fields(profile: dict[str, Any] | None) -> dict[str, Any]:
    """A node run's profile columns from its outcome's profile: the figures, and the node
    keys it waited for (`depends_on`)."""
    keys = (profile or {}).get("depends_on")
    ok = isinstance(keys, list) and all(isinstance(key, str) for key in keys)
    return {**profile_numbers(profile), "depends_on": keys if ok else None}


def derive(events: Iterable[Event]) -> tuple[ExecutionRecord, list[NodeRunRecord]]:
    """One execution's records from its events, folded in the order given (any order works)."""
    batch = list(events)
    if not batch:
        raise ValueError("no events")
    execution = ExecutionState.placeholder(batch[0].execution_id, batch[0].ts)
    nodes: dict[str, NodeRunState] = {}
    for event in batch:
        execution = execution.apply(event)
        for node_id in node_targets(event):
            node = nodes.get(node_id) or NodeRunState.empty(event.execution_id, node_id)
            nodes[node_id] = node.apply(event)
    runs = (node.cancelled_by(execution).record for node in nodes.values())
    return execution.record, sorted(runs, key=node_run_order)


def node_run_order(run: NodeRunRecord) -> tuple[bool, float, str]:
    """Sort key: by started_at, never-started last, then node_id."""
    return (run.started_at is None, run.started_at or 0.0, run.node_id)
