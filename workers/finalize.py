"""Ending an execution: build the result object (CONTRACT section 2) and store it once."""

from __future__ import annotations

from typing import Any

from storage.blobs import pack, unpack
from storage.state import ExecutionStatus, NodeRecord, NodeStatus, now_ms
from workers.stores import Stores


def finalize(
    execution_id: str,
    stores: Stores,
    status: ExecutionStatus,
    error: dict[str, Any] | None = None,
) -> bool:
    """Store the final result (a large one as a blob) and publish the terminal event; False if
    the execution was already over."""
    result = build_result(execution_id, stores, status, error)
    summary = {"error": result["error"], "duration_ms": result["duration_ms"]}
    packed = pack(result, stores.blobs, stores.blob_threshold_bytes)
    won = stores.state.finish(execution_id, status, packed, summary)
    # Also when another call won: a node that ended after the winner may have lengthened
    # some keys' TTL again (its outcome script sets the running TTL).
    stores.retire(execution_id)
    return won


def build_result(
    execution_id: str,
    stores: Stores,
    status: ExecutionStatus,
    error: dict[str, Any] | None,
) -> dict[str, Any]:
    """`{id, status, success, data, error, duration_ms, executedNodes, trace}`."""
    meta = stores.state.snapshot(execution_id, []).execution
    snapshot = stores.state.snapshot(execution_id, meta.sinks if meta else [])
    started = (meta.began_ms if meta else None) or now_ms()
    records = sorted(snapshot.nodes.values(), key=lambda r: (r.started_ms or 0, r.key))
    return {
        "id": execution_id,
        "status": status.value,
        "success": status is ExecutionStatus.SUCCEEDED,
        "data": {key: unpack(text, stores.blobs) for key, text in snapshot.sink_outputs.items()},
        "error": error,
        "duration_ms": max(0, now_ms() - started),
        "executedNodes": [r.key for r in records if r.status in _RAN],
        "trace": [_trace(record, started) for record in records],
    }


_RAN = frozenset({NodeStatus.SUCCEEDED, NodeStatus.FAILED, NodeStatus.RUNNING})


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
