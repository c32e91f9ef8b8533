"""Ending an execution: build the result object (CONTRACT section 2) and store it once."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import Any

from conductor.model.children import BLUEPRINT_TYPE, child_id
from conductor.model.errors import error_data
from conductor.model.problems import ErrorCode
from storage.blobs import pack, unpack
from storage.nesting import MAX_DEPTH, check_nesting
from storage.state import ExecutionStatus, NodeRecord, NodeStatus, StateChange, now_ms
from workers.admission import release_slot
from workers.stores import Stores

log = logging.getLogger(__name__)

RESULT_LEVELS = 4  # the result object, data, a sink's output: around a node output's levels


def finalize(
    execution_id: str,
    stores: Stores,
    status: ExecutionStatus,
    error: dict[str, Any] | None = None,
) -> bool:
    """Store the final result (a large one as a blob) and publish the terminal event; False if
    the execution was already over."""
    try:
        result = build_result(execution_id, stores, status, error)
        check_nesting(result, MAX_DEPTH + RESULT_LEVELS)
        packed = pack(result, stores.blobs, stores.blob_threshold_bytes)
    except (TypeError, ValueError, OSError, RecursionError) as exc:  # not JSON, too deep, no space
        status, result = _unstorable(execution_id, stores, status, exc)
        packed = json.dumps(result)
    summary = {"error": result["error"], "duration_ms": result["duration_ms"]}
    won = stores.state.finish(execution_id, status, packed, summary)
    release_slot(execution_id, stores)
    # Also when another call won: a node that ended after the winner may have lengthened
    # some keys' TTL again (its outcome script sets the running TTL).
    stores.retire(execution_id)
    if won and status is not ExecutionStatus.SUCCEEDED:
        cancel_children(execution_id, stores)
    return won


def cancel_children(execution_id: str, stores: Stores) -> None:
    """A failed or cancelled execution's live child executions end cancelled, and theirs
    (docs/children.md): nothing would take their results."""
    stored = stores.state.stored_plan(execution_id)
    for key, node in stored.plan.nodes.items() if stored else ():
        child = child_id(execution_id, key)
        if node.type == BLUEPRINT_TYPE and stores.state.cancel(child) is StateChange.DONE:
            error = error_data(ErrorCode.CANCELLED, f"its parent {execution_id} ended")
            finalize(child, stores, ExecutionStatus.CANCELLED, error)


def fail_bare(execution_id: str, stores: Stores, error: dict[str, Any]) -> bool:
    """End an execution whose state cannot be read as failed with `error`, its result holding
    nothing else (no data, no trace); False if it was already over."""
    result = {
        "id": execution_id,
        "status": ExecutionStatus.FAILED.value,
        "success": False,
        "data": {},
        "error": error,
        "duration_ms": None,
        "executedNodes": [],
        "trace": [],
    }
    won = stores.state.finish(execution_id, ExecutionStatus.FAILED, json.dumps(result))
    release_slot(execution_id, stores)
    stores.retire(execution_id)
    return won


def _unstorable(
    execution_id: str, stores: Stores, status: ExecutionStatus, exc: Exception
) -> tuple[ExecutionStatus, dict[str, Any]]:
    """The result of an execution whose full result cannot be stored: failed (a cancel stays
    cancelled) with SERIALIZATION_FAILED (INTERNAL_ERROR when the blob store could not take
    it), and no data."""
    log.warning("execution %s: its result cannot be stored: %s", execution_id, exc)
    if status is not ExecutionStatus.CANCELLED:
        status = ExecutionStatus.FAILED
    message = f"the execution's result cannot be stored: {exc}"
    code = ErrorCode.INTERNAL_ERROR if isinstance(exc, OSError) else ErrorCode.SERIALIZATION_FAILED
    error = error_data(code, message)
    result = {**build_result(execution_id, stores, status, error, with_data=False), "data": {}}
    return status, result


def build_result(
    execution_id: str,
    stores: Stores,
    status: ExecutionStatus,
    error: dict[str, Any] | None,
    *,
    with_data: bool = True,
) -> dict[str, Any]:
    """`{id, status, success, data, error, duration_ms, executedNodes, trace}`; `data` holds
    the sinks' outputs when `with_data`."""
    meta = stores.state.snapshot(execution_id, []).execution
    sinks = meta.sinks if meta and with_data else []
    snapshot = stores.state.snapshot(execution_id, sinks)
    started = (meta.began_ms if meta else None) or now_ms()
    records = sorted(snapshot.nodes.values(), key=lambda r: (r.started_ms or 0, r.key))
    ran = [r.key for r in records if r.status in _RAN]
    if status is not ExecutionStatus.SUCCEEDED:  # as `finish` leaves them: drained
        records = [_drained(record) for record in records]
    return {
        "id": execution_id,
        "status": status.value,
        "success": status is ExecutionStatus.SUCCEEDED,
        "data": {
            key: unpack(text, stores.blobs, lazy=True)
            for key, text in snapshot.sink_outputs.items()
        },
        "error": error,
        "duration_ms": max(0, now_ms() - started),
        "executedNodes": ran,
        "trace": [_trace(record, started) for record in records],
    }


_RAN = frozenset({NodeStatus.SUCCEEDED, NodeStatus.FAILED, NodeStatus.RUNNING})


def _drained(record: NodeRecord) -> NodeRecord:
    if record.status in (NodeStatus.PENDING, NodeStatus.RUNNING):
        return replace(record, status=NodeStatus.CANCELLED)
    return record


def _trace(record: NodeRecord, execution_start_ms: int) -> dict[str, Any]:
    started, finished = record.started_ms, record.finished_ms
    return {
        "nodeId": record.key,
        "status": record.status.value,
        "attempts": record.attempts,
        "worker": record.worker,
        "start_offset_ms": None if started is None else started - execution_start_ms,
        "duration_ms": None if started is None or finished is None else finished - started,
        "error": record.error,
    }
