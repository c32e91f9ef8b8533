"""Following an execution's live events until it ends (pub/sub; no polling of Celery)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from conductor.model.errors import error_data
from conductor.model.problems import ErrorCode
from storage.blobs import unpack
from storage.event_source import EventsMissed, EventSource, as_event_source
from storage.events import TERMINAL_EVENTS, Event
from storage.redis_client import Redis
from storage.state import ExecutionStatus
from workers.finalize import finalize
from workers.stores import Stores

# Re-read the result at least this often, in case a terminal event was missed (a dropped
# subscription); the terminal event itself wakes the follower at once.
RECHECK_S = 5.0

OnEvent = Callable[[Event], None]
TERMINAL_TYPES = frozenset(kind.value for kind in TERMINAL_EVENTS)


class ExecutionFollower:
    """A subscription to one execution's events (`live`), or to its end only; open it before
    submitting to miss none."""

    def __init__(
        self, source: EventSource | Redis, execution_id: str, *, live: bool = True
    ) -> None:
        self.execution_id = execution_id
        self.subscription = as_event_source(source).subscribe(execution_id, terminal_only=not live)

    def wait(
        self, stores: Stores, timeout_s: float | None = None, on_event: OnEvent | None = None
    ) -> dict[str, Any]:
        """Block until the execution ends and return its result object, passing each live
        event to `on_event`. With `timeout_s`, an execution still running then is ended as
        failed with TIMEOUT (the first final state wins, so a result that lands at the same
        moment is kept)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while (text := stores.state.result(self.execution_id)) is None:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                error = error_data(ErrorCode.TIMEOUT, f"no result within {timeout_s} s")
                finalize(self.execution_id, stores, ExecutionStatus.FAILED, error)
                continue
            self._until_terminal(min(remaining or RECHECK_S, RECHECK_S), on_event)
        result: dict[str, Any] = unpack(text, stores.blobs)
        return result

    def _until_terminal(self, wait_s: float, on_event: OnEvent | None) -> None:
        end = time.monotonic() + wait_s
        while (left := end - time.monotonic()) > 0:
            try:
                text = self.subscription.get(left)
            except EventsMissed:  # the terminal event may be among them: read the result
                return
            if text is None:
                continue
            payload = json.loads(text)
            if on_event is not None:  # a full model only for a viewer; waiting needs the type
                on_event(Event.model_validate(payload))
            if payload.get("type") in TERMINAL_TYPES:
                return

    def close(self) -> None:
        """Unsubscribe."""
        self.subscription.close()

    def __enter__(self) -> ExecutionFollower:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def wait_for_result(
    source: EventSource | Redis,
    stores: Stores,
    execution_id: str,
    timeout_s: float | None = None,
) -> dict[str, Any]:
    """Block until the execution ends and return its result object."""
    with ExecutionFollower(source, execution_id, live=False) as follower:
        return follower.wait(stores, timeout_s)
