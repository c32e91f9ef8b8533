"""Child executions (docs/children.md): starting and reading them for a worker's `blueprint`
nodes, and finding an execution's children and ancestors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from conductor.dispatch import Dispatcher
from conductor.model.children import BLUEPRINT_TYPE, ChildRequest, ChildState, child_id
from conductor.model.problems import ErrorCode, InvalidBlueprint
from nodes.errors import NodeError
from storage.blobs import unpack
from storage.blueprint_records import BlueprintNotFound, BlueprintStore
from storage.state import ExecutionExists, StateStore
from workers.stores import Stores


@dataclass(frozen=True)
class ChildLink:
    """A child execution of a `blueprint` node."""

    execution_id: str
    node: str
    status: str


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
