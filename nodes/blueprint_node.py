"""`blueprint`: run a stored Blueprint as a child execution (docs/children.md). The node starts
the child once (its id is derived from the parent's and the node's), parks without holding a
worker, and its output is the child's result `data` plus `executionId` when the child ends."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from pydantic import Field

from conductor.model.children import (
    BLUEPRINT_TYPE,
    ChildRequest,
    ChildState,
    child_id,
    child_signal,
)
from conductor.model.problems import ErrorCode
from conductor.model.waits import Arrival, Wait
from nodes.base import NodeContext, NodeParameters
from nodes.errors import NodeError
from nodes.parking import ParkingNode
from nodes.wait_for_signal import MAX_WAIT_MS

_CODES = frozenset(code.value for code in ErrorCode)


class ChildRuns(Protocol):
    """Starts and reads child executions: the worker's (conductor/children.py)."""

    def start(self, request: ChildRequest) -> ChildState:
        """Start the child unless it exists; its state."""

    def state(self, execution_id: str) -> ChildState | None:
        """The child's state; None when unknown (expired)."""

    def cancel(self, execution_id: str) -> None:
        """Cancel the child (and its children) if it still runs."""


class BlueprintParameters(NodeParameters):
    """Parameters of `blueprint`."""

    blueprintId: str = Field(min_length=1, description="The stored Blueprint to run")
    # the wait for the child (the child's own settings.runtime.timeout bounds the child)
    timeout: int = Field(
        default=MAX_WAIT_MS, ge=1, le=MAX_WAIT_MS, description="How long to wait, in ms (7 days)"
    )
    revision: int | None = Field(
        default=None, ge=1, description="Its revision (default: the latest, pinned at submit)"
    )
    inputs: dict[str, Any] = Field(
        default_factory=dict, description="The child's inputs, over those from the input ports"
    )


class BlueprintNode(ParkingNode[BlueprintParameters]):
    """Run a stored Blueprint as a child execution; its result data is the output."""

    type_name = BLUEPRINT_TYPE
    description = "Run a stored Blueprint as a child execution, without holding a worker"
    parameters_model = BlueprintParameters

    def wait(self, params: BlueprintParameters, context: NodeContext) -> Wait | None:
        request = ChildRequest(
            parent_id=context.execution_id,
            node_key=context.node_key or context.node_id,
            blueprint_id=params.blueprintId,
            revision=params.revision,
            inputs=child_inputs(params, context),
        )
        child = _children(context).start(request)
        if child.over:
            return None  # `run` reads its result
        return Wait(timeout_ms=params.timeout, signal=child_signal(request.node_key))

    def resume(
        self, params: BlueprintParameters, context: NodeContext, arrival: Arrival
    ) -> Mapping[str, Any]:
        if arrival.timed_out:
            child = self._child(context)
            _children(context).cancel(child)  # nothing waits for it any more
            message = f"child execution {child} did not end in time (cancelled)"
            raise NodeError(message, code=ErrorCode.TIMEOUT.value, retryable=False)
        return self.run(params, context)

    def run(self, params: BlueprintParameters, context: NodeContext) -> Mapping[str, Any]:
        """The ended child's output (after `wait` found it over, or its end woke the node)."""
        found = _children(context).state(self._child(context))
        if found is None:
            message = f"child execution {self._child(context)} is gone (expired)"
            raise NodeError(message, retryable=False)
        return child_output(found)

    def _child(self, context: NodeContext) -> str:
        return child_id(context.execution_id, context.node_key or context.node_id)


def child_inputs(params: BlueprintParameters, context: NodeContext) -> dict[str, Any]:
    """The main input when it is a mapping, then the named input ports, then `inputs`."""
    found: dict[str, Any] = dict(context.data) if isinstance(context.data, Mapping) else {}
    found.update({port: value for port, value in context.inputs.items() if port != "default"})
    return {**found, **params.inputs}


def child_output(child: ChildState) -> dict[str, Any]:
    """A succeeded child's `data` (each sink's output, also under `result`) and its id; a
    failed or cancelled child fails the node, naming it."""
    result = child.result or {}
    if child.status == "succeeded":
        data = result.get("data") or {}
        return {**data, "result": data, "executionId": child.execution_id}
    if not child.over:  # woken by an older end of this child, which a retry runs again
        raise NodeError(f"child execution {child.execution_id} is {child.status} again")
    error = result.get("error") or {}
    code = error.get("code") if error.get("code") in _CODES else ErrorCode.EXECUTION_FAILED.value
    where = f" at node {error['nodeId']}" if error.get("nodeId") else ""
    message = f"child execution {child.execution_id} {child.status}{where}: {error.get('message')}"
    raise NodeError(message, code=code, retryable=False)


def _children(context: NodeContext) -> ChildRuns:
    children = context.environment.children
    if children is None:
        raise NodeError("blueprint nodes run only on a worker", retryable=False)
    return children
