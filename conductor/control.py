"""Execution control: cancel, pause, resume and retry, durable in the execution's state."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from enum import StrEnum

from conductor.children import children_of
from conductor.dispatch import Dispatcher
from conductor.model.errors import error_data
from conductor.model.plan import ExecutionPlan
from conductor.model.problems import ErrorCode
from storage.events import EventType
from storage.state import ExecutionStatus, NodeRecord, NodeStatus, StateChange
from workers.finalize import finalize

LIVE = frozenset({ExecutionStatus.QUEUED, ExecutionStatus.RUNNING})
RERUN = frozenset({NodeStatus.FAILED, NodeStatus.CANCELLED})
RERUN_CHILD = frozenset({ExecutionStatus.FAILED, ExecutionStatus.CANCELLED})


class ControlOutcome(StrEnum):
    """What a control command did."""

    DONE = "done"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"  # the execution's state does not allow it


class Control:
    """Control commands over the execution's state in Redis: workers check it before a node
    starts, and every second while one runs."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        self.state = dispatcher.stores.state

    def cancel(self, execution_id: str) -> ControlOutcome:
        """End the execution as cancelled: no node starts after this, running ones are told to
        stop (within a few seconds), and their late outcomes are discarded."""
        marked = self.state.cancel(execution_id)
        if marked is not StateChange.DONE:
            return _outcome(marked)
        error = error_data(ErrorCode.CANCELLED, "cancelled on request")
        finalize(execution_id, self.dispatcher.stores, ExecutionStatus.CANCELLED, error)
        self._children(execution_id, self.cancel, LIVE | {ExecutionStatus.PAUSED})
        return ControlOutcome.DONE

    def pause(self, execution_id: str) -> ControlOutcome:
        """Start no new node; running ones finish. One waiting in its concurrency key's line
        cannot be paused (its resume would skip the line): cancel it, or let it start."""
        meta = self.state.snapshot(execution_id, []).execution
        if meta is not None and meta.queued_reason is not None:
            return ControlOutcome.CONFLICT
        moved = self.state.transition(
            execution_id, LIVE, ExecutionStatus.PAUSED, EventType.EXECUTION_PAUSED
        )
        if moved is StateChange.DONE:
            self._children(execution_id, self.pause, LIVE)
        return _outcome(moved)

    def resume(self, execution_id: str) -> ControlOutcome:
        """Run again what has not finished, from the stored outputs (a node still running
        from before the pause is waited for, not run twice)."""
        moved = self.state.transition(
            execution_id,
            frozenset({ExecutionStatus.PAUSED}),
            ExecutionStatus.RUNNING,
            EventType.EXECUTION_RESUMED,
        )
        if moved is StateChange.DONE:
            self._children(execution_id, self.resume, {ExecutionStatus.PAUSED})
            self.dispatcher.redispatch(execution_id)
        return _outcome(moved)

    def step(self, execution_id: str) -> ControlOutcome:
        """Run the paused execution's ready nodes (those whose inputs are all there), then
        pause before the next one (docs/debugging.md)."""
        stored = self.state.stored_plan(execution_id)
        if stored is None:
            return ControlOutcome.NOT_FOUND
        stepped = self.state.step(execution_id, ready_keys(stored.plan, stored.done))
        if stepped is StateChange.DONE:
            self.dispatcher.redispatch(execution_id)
        return _outcome(stepped)

    def retry(self, execution_id: str) -> ControlOutcome:
        """Run a failed or cancelled execution again: its failed, cancelled and never-run
        nodes, and what consumed a failed node's output; successful outputs are kept."""
        stored = self.state.stored_plan(execution_id)
        if stored is None:
            return ControlOutcome.NOT_FOUND
        records = self.state.snapshot(execution_id, []).nodes
        reopened = self.state.reopen(execution_id, rerun_keys(stored.plan, records))
        if reopened is StateChange.DONE:
            self._children(execution_id, self.retry, RERUN_CHILD)
        slots = self.dispatcher.stores.slots
        # With a concurrency key it takes a slot again, or waits in line (a freed slot sends it).
        if reopened is StateChange.DONE and (slots is None or slots.claim(execution_id)):
            self.dispatcher.redispatch(execution_id)
        return _outcome(reopened)

    def _children(
        self,
        execution_id: str,
        command: Callable[[str], ControlOutcome],
        statuses: Collection[ExecutionStatus],
    ) -> None:
        """The same command for its child executions in `statuses` (and theirs, in turn):
        the parent's cancel, pause, resume and retry reach them (docs/children.md)."""
        for child in children_of(self.state, execution_id):
            if ExecutionStatus(child.status) in statuses:
                command(child.execution_id)


def ready_keys(plan: ExecutionPlan, done: Collection[str]) -> set[str]:
    """The unfinished nodes whose upstream nodes have all finished: the heads of the canvas
    a re-dispatch sends."""
    remaining = {key: node for key, node in plan.nodes.items() if key not in done}
    return {
        key
        for key, node in remaining.items()
        if not any(source in remaining for source in node.depends_on)
    }


def rerun_keys(plan: ExecutionPlan, records: Mapping[str, NodeRecord]) -> set[str]:
    """Failed and cancelled nodes, and every finished node downstream of one (it ran on a
    settled failure: a loop collecting its items, a parallel in allSettled, a group)."""
    dependents: dict[str, set[str]] = {key: set() for key in plan.nodes}
    for key, node in plan.nodes.items():
        for upstream in node.depends_on:
            dependents.setdefault(upstream, set()).add(key)
    todo = [key for key, record in records.items() if record.status in RERUN]
    chosen = set(todo)
    while todo:
        for key in dependents.get(todo.pop(), ()):
            record = records.get(key)
            if key not in chosen and record is not None and record.status is not NodeStatus.PENDING:
                chosen.add(key)
                todo.append(key)
    return chosen


def _outcome(change: StateChange) -> ControlOutcome:
    return ControlOutcome(change.value)
