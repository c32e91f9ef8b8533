"""/v1/executions/{id}/nodes/...: one node of a live execution, its inputs and its output
(for debugging: what a node paused at a breakpoint will receive)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from conductor.api.body import JsonBodyRoute
from conductor.api.context import ApiContext
from conductor.api.models import NodeDetail, NodeInputs
from conductor.api.problems import ApiProblem
from conductor.inspection import Inspector, NodeNotFound
from storage.blobs import unpack

router = APIRouter(prefix="/v1/executions", tags=["executions"], route_class=JsonBodyRoute)


def inspector(request: Request) -> Inspector:
    """An inspector over the API's stores."""
    ctx: ApiContext = request.app.state.context
    return Inspector(ctx.stores, ctx.outputs)


@router.get("/{execution_id}/nodes/{node_key:path}/output")
def node_output(execution_id: str, node_key: str, request: Request) -> Any:
    """A node's output while the execution is in Redis (404 when it has none)."""
    found = inspector(request)
    text = found.outputs.outputs(execution_id, [node_key]).get(node_key)
    if text is None:
        raise ApiProblem(404, "NOT_FOUND", f"no output of node {node_key!r} in {execution_id!r}")
    return unpack(text, found.stores.blobs)


@router.get("/{execution_id}/nodes/{node_key:path}/inputs", response_model=NodeInputs)
def node_inputs(execution_id: str, node_key: str, request: Request) -> NodeInputs:
    """A node's resolved inputs (ports and `$input`) while the execution is in Redis, built
    by the worker's own wire rule from the stored plan and upstream outputs."""
    found = inspector(request)
    try:
        inputs, waiting = found.inputs(*found.planned(execution_id, node_key))
    except NodeNotFound as exc:
        raise ApiProblem(404, "NOT_FOUND", str(exc)) from None
    if inputs is None:
        names = ", ".join(repr(source) for source in waiting)
        detail = f"node {node_key!r} waits for upstream node {names}: not finished yet"
        raise ApiProblem(409, "CONFLICT", detail)
    return NodeInputs(**inputs)


@router.get("/{execution_id}/nodes/{node_key:path}", response_model=NodeDetail)
def node_detail(execution_id: str, node_key: str, request: Request) -> NodeDetail:
    """One node: its plan entry and state, its resolved inputs once its upstream nodes have
    finished (else `waiting_for` names them), its output, and whether a breakpoint holds
    before it."""
    try:
        return NodeDetail.model_validate(inspector(request).node(execution_id, node_key))
    except NodeNotFound as exc:
        raise ApiProblem(404, "NOT_FOUND", str(exc)) from None
