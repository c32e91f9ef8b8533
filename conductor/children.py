"""Child executions (docs/children.md): starting and reading them for a worker's `blueprint`
nodes, and finding an execution's children and ancestors."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from conductor.model.children import BLUEPRINT_TYPE, ChildRequest, ChildState, child_id
from conductor.model.problems import ErrorCode, InvalidBlueprint
from nodes.errors import NodeError
from storage.blobs import unpack
from storage.blueprint_records import BlueprintNotFound, BlueprintStore
from storage.history import HistoryStore, NodeRunRecord
from storage.state import ExecutionExists, StateStore
from workers.stores import Stores

if TYPE_CHECKING:  # not at import: the CLI's history commands use this module too
    from conductor.dispatch import Dispatcher


@dataclass(frozen=True)
class ChildLink:
    """A child execution of a `blueprint` node."""

    execution_id: str
    node: str
    status: str


@dataclass(frozen=True)
class Link:
    """A parent or child execution as views show it."""

    id: str
    node: str
    status: str | None = None


@dataclass(frozen=True)
class Family:
    """An execution's parent (when it is a child) and its children."""

    parent: Link | None = None
    children: tuple[Link, ...] = ()


class ChildLauncher:
    """The worker's `ChildRuns` (nodes/blueprint_node.py): starts a child once, reads it."""

    def __init__(self, dispatcher: Dispatcher, blueprints: Callable[[], BlueprintStore]) -> None:
        self.dispatcher = dispatcher
        self.stores: Stores = dispatcher.stores
        self.blueprints = blueprints

    def start(self, request: ChildRequest) -> ChildState:
        """Submit the child under its derived id unless it exists; its state."""
        execution_id = child_id(request.parent_id, request.node_key)
        found = self.state(execution_id)
        if found is not None:
            return found
        try:
            stored = self.blueprints().get(request.blueprint_id, request.revision)
        except BlueprintNotFound as exc:
            raise NodeError(
                exc.message, code=ErrorCode.VALIDATION_FAILED, retryable=False
            ) from None
        model = stored.blueprint.model_copy(
            update={"version": f"{stored.version}+r{stored.revision}"}
        )
        parent = (request.parent_id, request.node_key)
        try:
            self.dispatcher.submit(model, request.inputs, execution_id, parent=parent)
        except ExecutionExists:
            pass  # another delivery of this node started it a moment ago
        except InvalidBlueprint as exc:
            message = f"Blueprint {request.blueprint_id!r} cannot run as a child: {exc}"
            raise NodeError(message, code=ErrorCode.VALIDATION_FAILED, retryable=False) from None
        return self.state(execution_id) or ChildState(execution_id, "queued")

    def cancel(self, execution_id: str) -> None:
        """Cancel it and its children, as `conductor cancel` would."""
        from conductor.control import Control  # noqa: PLC0415  (control finds children here)

        Control(self.dispatcher).cancel(execution_id)

    def state(self, execution_id: str) -> ChildState | None:
        """Its status, and its result once it ended; None when unknown."""
        meta = self.stores.state.snapshot(execution_id, []).execution
        if meta is None:
            return None
        result = None
        if meta.status.is_terminal:
            text = self.stores.state.result(execution_id)
            result = unpack(text, self.stores.blobs) if text else None
        return ChildState(execution_id, meta.status.value, result)


def children_of(state: StateStore, execution_id: str) -> list[ChildLink]:
    """The child executions its `blueprint` nodes started (loop items' included)."""
    stored = state.stored_plan(execution_id)
    if stored is None:
        return []
    found = []
    for key, node in sorted(stored.plan.nodes.items()):
        if node.type != BLUEPRINT_TYPE:
            continue
        child = child_id(execution_id, key)
        meta = state.snapshot(child, []).execution
        if meta is not None:
            found.append(ChildLink(child, key, meta.status.value))
    return found


def family_in_redis(state: StateStore, execution_id: str) -> Family:
    """Parent and children of an execution Redis holds."""
    meta = state.snapshot(execution_id, []).execution
    parent = None
    if meta is not None and meta.parent_id:
        above = state.snapshot(meta.parent_id, []).execution
        status = None if above is None else above.status.value
        parent = Link(meta.parent_id, meta.parent_node or "", status)
    children = tuple(
        Link(child.execution_id, child.node, child.status)
        for child in children_of(state, execution_id)
    )
    return Family(parent, children)


def family_in_history(
    history: HistoryStore, execution_id: str, runs: Sequence[NodeRunRecord]
) -> Family:
    """Parent and children from history: the parent from its columns, the children by the
    ids their `blueprint` node runs derive."""
    parent = None
    record = history.execution(execution_id)
    if record is not None and record.parent_id:
        above = history.execution(record.parent_id)
        status = None if above is None else above.status.value
        parent = Link(record.parent_id, record.parent_node or "", status)
    children = []
    for run in runs:
        if run.type == BLUEPRINT_TYPE:
            child = history.execution(child_id(execution_id, run.node_id))
            if child is not None:
                children.append(Link(child.id, run.node_id, child.status.value))
    return Family(parent, tuple(children))
