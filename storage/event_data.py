"""Each event type's `data`, defined once: the shapes both state stores emit (the Lua scripts
build the same tables; tests/contract/test_state_store.py checks both against these), and the
builders the in-memory store and the Python side of the Redis store use."""

from __future__ import annotations

import json
import uuid
from functools import cache
from typing import (
    Any,
    NotRequired,  # pydantic validates these on 3.11
)

from pydantic import ConfigDict, TypeAdapter, with_config
from typing_extensions import TypedDict

from conductor.model.plan import ExecutionPlan
from storage.events import Event, EventType
from storage.statuses import ExecutionStatus, now_ms

_STRICT = ConfigDict(extra="forbid")


@with_config(_STRICT)
class QueuedData(TypedDict):
    """execution.queued."""

    blueprint_id: str
    blueprint_name: str
    blueprint_version: str | None
    inputs: dict[str, Any]
    nodes: int  # how many
    parent_id: NotRequired[str]  # a child execution's (docs/children.md)
    parent_node: NotRequired[str]
    blueprint_hash: NotRequired[str]  # the archived Blueprint (storage/blueprint_archive.py)
    replay_of: NotRequired[str]  # the execution this one replays
    priority: NotRequired[int]  # when not the default
    concurrency_key: NotRequired[str]
    reason: NotRequired[str]  # why it waits: its concurrency key's slots are taken


@with_config(_STRICT)
class NoData(TypedDict):
    """execution.started."""


@with_config(_STRICT)
class StatusData(TypedDict):
    """execution.paused / resumed (resumed by a retry: `retry` and the `nodes` reset; paused
    before a node by a breakpoint or a step: `breakpoint`, `step`; resumed for one step: the
    `step`'s nodes)."""

    status: str
    retry: NotRequired[bool]
    breakpoint: NotRequired[str]
    step: NotRequired[bool | list[str] | dict[str, Any]]  # Lua encodes an empty list as {}
    nodes: NotRequired[list[str] | dict[str, Any]]  # Lua encodes an empty list as {}


@with_config(_STRICT)
class EndedData(TypedDict):
    """execution.succeeded / failed / cancelled."""

    status: str
    error: dict[str, Any] | None
    duration_ms: int | None
    result: Any  # the result object, or a blob reference when large
    # the nodes that ended cancelled (never for a success): those a failure or a cancel
    # stopped before their outcome, so history ends them too
    cancelled: list[str]


@with_config(_STRICT)
class NodeStartedData(TypedDict):
    """node.started."""

    attempt: int
    worker: str
    type: str


@with_config(_STRICT)
class NodeOutcomeData(TypedDict):
    """node.succeeded / skipped / cached, and node.failed for a settled failure (its error
    became the node's output: `settled` true) or a final one (`settled` false, no duration)."""

    duration_ms: NotRequired[int]
    error: NotRequired[dict[str, Any]]
    settled: NotRequired[bool]
    reason: NotRequired[str]  # node.skipped: why (disabled, a branch not taken, runIf false)
    profile: NotRequired[dict[str, Any]]  # what the run used (conductor.model.resources)


@with_config(_STRICT)
class NodeRetryingData(TypedDict):
    """node.retrying."""

    error: dict[str, Any]
    retry_in_s: float
    attempt: int


@with_config(_STRICT)
class WaitingData(TypedDict):
    """What a parked node waits for (docs/waits.md): its signal (None: the time alone) and
    when its wait times out (ms since the epoch)."""

    signal: str | None
    wake_ms: int


@with_config(_STRICT)
class ProgressData(TypedDict):
    """node.progress; `waiting` when the node parked."""

    progress: float  # 0..1
    message: str
    waiting: NotRequired[WaitingData]


EVENT_DATA: dict[EventType, Any] = {
    EventType.EXECUTION_QUEUED: QueuedData,
    EventType.EXECUTION_STARTED: NoData,
    EventType.EXECUTION_PAUSED: StatusData,
    EventType.EXECUTION_RESUMED: StatusData,
    EventType.EXECUTION_SUCCEEDED: EndedData,
    EventType.EXECUTION_FAILED: EndedData,
    EventType.EXECUTION_CANCELLED: EndedData,
    EventType.NODE_STARTED: NodeStartedData,
    EventType.NODE_PROGRESS: ProgressData,
    EventType.NODE_SUCCEEDED: NodeOutcomeData,
    EventType.NODE_SKIPPED: NodeOutcomeData,
    EventType.NODE_CACHED: NodeOutcomeData,
    EventType.NODE_FAILED: NodeOutcomeData,
    EventType.NODE_RETRYING: NodeRetryingData,
}


@cache
def _adapter(kind: EventType) -> TypeAdapter[Any]:
    return TypeAdapter(EVENT_DATA[kind])


def check_data(event: Event) -> None:
    """Raise pydantic's ValidationError when `event.data` is not its type's shape."""
    _adapter(event.type).validate_python(event.data, strict=False)


def node_outcome(
    duration_ms: int, error: dict[str, Any] | None, reason: str | None = None
) -> NodeOutcomeData:
    """A node's stored outcome (with the error of a settled failure, or why it was skipped)."""
    data: NodeOutcomeData = {"duration_ms": duration_ms}
    if error is not None:
        data["error"] = error
        data["settled"] = True
    if reason:
        data["reason"] = reason
    return data


def queued_event(plan: ExecutionPlan, reason: str | None = None) -> Event:
    """execution.queued, seq 1; `reason`: why it waits (its concurrency key's line)."""
    data: QueuedData = {
        "blueprint_id": plan.blueprint_id,
        "blueprint_name": plan.blueprint_name,
        "blueprint_version": plan.blueprint_version,
        "inputs": plan.inputs,
        "nodes": len(plan.nodes),
    }
    if plan.parent_id is not None:
        data["parent_id"] = plan.parent_id
        data["parent_node"] = plan.parent_node or ""
    if plan.blueprint_hash:
        data["blueprint_hash"] = plan.blueprint_hash
    if plan.replay_of:
        data["replay_of"] = plan.replay_of
    if plan.priority is not None:
        data["priority"] = plan.priority
    if plan.concurrency_key is not None:
        data["concurrency_key"] = plan.concurrency_key
    if reason is not None:
        data["reason"] = reason
    return _event(plan.execution_id, EventType.EXECUTION_QUEUED, dict(data))


def waiting_reason(plan: ExecutionPlan) -> str:
    """Why an execution waits in its concurrency key's line."""
    return waiting_reason_for(plan.concurrency_key or "", plan.max_running or 1)


def waiting_reason_for(concurrency_key: str, max_running: int) -> str:
    """Why an execution with this key and limit waits in the key's line."""
    return (
        f"waiting for a slot of concurrency key {concurrency_key!r}: "
        f"{max_running} execution(s) with it are running (max_running)"
    )


def terminal_data(
    status: ExecutionStatus,
    result: str,
    summary: dict[str, Any] | None = None,
    cancelled: list[str] | None = None,
) -> EndedData:
    """The data of execution.succeeded|failed|cancelled; `summary` holds the error and duration
    when the stored result is a blob reference; `cancelled` the nodes that ended cancelled."""
    stored = json.loads(result)
    summary = summary or (stored if isinstance(stored, dict) else {})
    return {
        "status": status.value,
        "error": summary.get("error"),
        "duration_ms": summary.get("duration_ms"),
        "result": stored,
        "cancelled": cancelled or [],
    }


def terminal_event(
    execution_id: str,
    status: ExecutionStatus,
    result: str,
    summary: dict[str, Any] | None = None,
    cancelled: list[str] | None = None,
) -> Event:
    """execution.succeeded|failed|cancelled (its seq is set when it is emitted), with the
    nodes that ended cancelled."""
    data = terminal_data(status, result, summary, cancelled)
    return _event(execution_id, EventType(f"execution.{status.value}"), dict(data))


def _event(execution_id: str, kind: EventType, data: dict[str, Any]) -> Event:
    return Event(
        id=str(uuid.uuid4()),
        execution_id=execution_id,
        seq=1,
        type=kind,
        ts=now_ms() / 1000,
        data=data,
    )
