"""Waiting for an execution's end by listening to its events (no polling)."""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from storage import keys
from storage.blobs import unpack
from storage.state import ExecutionStatus
from workers.finalize import finalize
from workers.stores import Stores

TERMINAL_EVENTS = frozenset(f"execution.{s.value}" for s in ExecutionStatus if s.is_terminal)


class WaitTimeout(TimeoutError):
    """The execution did not end within the time given."""


def wait_for_result(
    client: redis.Redis,
    stores: Stores,
    execution_id: str,
    timeout_s: float | None = None,
) -> dict[str, Any]:
    """Block until the execution ends and return its result object.

    With `timeout_s`, an execution still running then is ended as failed with TIMEOUT (the
    first final state wins, so a result that lands at the same moment is kept).
    """
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    pubsub = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
    pubsub.subscribe(keys.events_channel(execution_id))
    try:
        while (text := stores.state.result(execution_id)) is None:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                error = {
                    "code": "TIMEOUT",
                    "message": f"no result within {timeout_s} s",
                    "nodeId": None,
                }
                finalize(execution_id, stores, ExecutionStatus.FAILED, error)
                continue
            _next_terminal_event(pubsub, min(remaining or 5.0, 5.0))
    finally:
        pubsub.close()
    result: dict[str, Any] = unpack(text, stores.blobs)
    return result


def _next_terminal_event(pubsub: Any, wait_s: float) -> None:
    """Return at a terminal event, or after `wait_s` (then the caller re-reads the result)."""
    end = time.monotonic() + wait_s
    while (left := end - time.monotonic()) > 0:
        message = pubsub.get_message(timeout=left)
        if message and json.loads(message["data"]).get("type") in TERMINAL_EVENTS:
            return
