"""Execution control: cancel, pause, resume (retry comes with the reconciler, issue 6)."""

from __future__ import annotations

from enum import StrEnum

from conductor.dispatch import Dispatcher
from storage.events import EventType
from storage.state import ExecutionStatus
from workers.finalize import finalize

LIVE = frozenset({ExecutionStatus.QUEUED, ExecutionStatus.RUNNING})


class ControlOutcome(StrEnum):
    """What a control command did."""

    DONE = "done"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"  # the execution's state does not allow it


class Control:
    """Control commands over the execution's state in Redis (nodes check it before they start)."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        self.state = dispatcher.stores.state

    def cancel(self, execution_id: str) -> ControlOutcome:
        """End the execution as cancelled: no node starts after this."""
        meta = self.state.snapshot(execution_id, []).meta
        if "created_ms" not in meta:
            return ControlOutcome.NOT_FOUND
        error = {"code": "CANCELLED", "message": "cancelled on request", "nodeId": None}
        won = finalize(execution_id, self.dispatcher.stores, ExecutionStatus.CANCELLED, error)
        return ControlOutcome.DONE if won else ControlOutcome.CONFLICT

    def pause(self, execution_id: str) -> ControlOutcome:
        """Start no new node; running ones finish."""
        moved = self.state.transition(
            execution_id, LIVE, ExecutionStatus.PAUSED, EventType.EXECUTION_PAUSED
        )
        return _outcome(moved)

    def resume(self, execution_id: str) -> ControlOutcome:
        """Run again what has not finished, from the stored outputs."""
        moved = self.state.transition(
            execution_id,
            frozenset({ExecutionStatus.PAUSED}),
            ExecutionStatus.RUNNING,
            EventType.EXECUTION_RESUMED,
        )
        if moved:
            self.dispatcher.redispatch(execution_id)
        return _outcome(moved)


def _outcome(moved: bool | None) -> ControlOutcome:
    if moved is None:
        return ControlOutcome.NOT_FOUND
    return ControlOutcome.DONE if moved else ControlOutcome.CONFLICT
