"""Rows of the execution-history tables to and from records and events, and the listing
cursor."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import sqlalchemy as sa

from storage.cursors import InvalidCursor
from storage.events import Event, EventType
from storage.history import ExecutionRecord, InvalidEvent, NodeRunRecord
from storage.history_state import ExecutionState, NodeRunState
from storage.state import ExecutionStatus, NodeStatus


def dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def dump_or_none(value: Any) -> str | None:
    return None if value is None else dump(value)


def load_or_none(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def execution_row(state: ExecutionState) -> dict[str, Any]:
    record = state.record
    return {
        **record.model_dump(exclude={"inputs", "result", "error", "status"}),
        "status": record.status.value,
        "status_seq": state.status_seq,
        "inputs": dump(record.inputs),
        "result": dump_or_none(record.result),
        "error": dump_or_none(record.error),
    }


def execution_state(row: sa.Row[Any]) -> ExecutionState:
    fields = dict(row._mapping)
    status_seq = fields.pop("status_seq")
    fields.update(
        status=ExecutionStatus(fields["status"]),
        inputs=json.loads(fields["inputs"]),
        result=load_or_none(fields["result"]),
        error=load_or_none(fields["error"]),
    )
    return ExecutionState(record=ExecutionRecord(**fields), status_seq=status_seq)


def node_row(state: NodeRunState) -> dict[str, Any]:
    record = state.record
    return {
        **record.model_dump(exclude={"error", "status", "depends_on"}),
        "status": record.status.value,
        "error": dump_or_none(record.error),
        "depends_on": dump_or_none(record.depends_on),
        "status_seq": state.status_seq,
        "start_seq": state.start_seq,
        "error_seq": state.error_seq,
    }


def node_state(row: sa.Row[Any]) -> NodeRunState:
    fields = dict(row._mapping)
    seqs = {name: fields.pop(name) for name in ("status_seq", "start_seq", "error_seq")}
    fields.update(
        status=NodeStatus(fields["status"]),
        error=load_or_none(fields["error"]),
        depends_on=load_or_none(fields["depends_on"]),
    )
    return NodeRunState(record=NodeRunRecord(**fields), **seqs)


def event_row(event: Event) -> dict[str, Any]:
    try:
        data = dump(event.data)
    except (TypeError, ValueError) as error:
        raise InvalidEvent(event.id, f"data is not JSON: {error}") from None
    return {
        "id": event.id,
        "execution_id": event.execution_id,
        "seq": event.seq,
        "type": event.type.value,
        "node_id": event.node_id,
        "ts": event.ts,
        "data": data,
    }


def event(row: sa.Row[Any]) -> Event:
    fields = row._mapping
    return Event(
        id=fields["id"],
        execution_id=fields["execution_id"],
        seq=fields["seq"],
        type=EventType(fields["type"]),
        node_id=fields["node_id"],
        ts=fields["ts"],
        data=json.loads(fields["data"]),
    )


def encode_cursor(created_at: float, execution_id: str) -> str:
    raw = dump([created_at, execution_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, execution_id = json.loads(raw)
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError):
        raise InvalidCursor(f"not a listing cursor: {cursor!r}") from None
    if not isinstance(created_at, int | float) or not isinstance(execution_id, str):
        raise InvalidCursor(f"not a listing cursor: {cursor!r}")
    return float(created_at), execution_id
