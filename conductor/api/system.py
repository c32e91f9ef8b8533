"""Liveness, readiness, metrics and the node catalogue."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from conductor.api.executions import context
from conductor.api.metrics import render_metrics
from conductor.api.models import NodeTypeView
from conductor.api.problems import ApiProblem

router = APIRouter(tags=["system"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process answers (no dependencies checked, no token needed)."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> dict[str, str]:
    """Redis and the history store answer; 503 otherwise."""
    ctx = context(request)
    ctx.backend.ping()
    try:
        ctx.history.list_executions(limit=1)
    except Exception as exc:  # any failure of the store means not ready
        raise ApiProblem(
            503, "SERVICE_UNAVAILABLE", f"history store: {exc}", headers={"Retry-After": "5"}
        ) from None
    return {"status": "ready"}


@router.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    """Prometheus metrics: executions by status, node durations by type, queue depths, live
    workers (see conductor/api/metrics.py for what each costs)."""
    ctx = context(request)
    body = render_metrics(ctx.settings, ctx.backend, ctx.history)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


@router.get("/v1/nodes", response_model=list[NodeTypeView], tags=["nodes"])
def node_types(request: Request) -> list[NodeTypeView]:
    """Every node type with the JSON Schema of its parameters."""
    return [_view(kind) for kind in context(request).registry]


@router.get("/v1/nodes/{node_type}", response_model=NodeTypeView, tags=["nodes"])
def node_type(node_type: str, request: Request) -> NodeTypeView:
    """One node type."""
    registry = context(request).registry
    if node_type not in registry:
        raise ApiProblem(404, "NODE_TYPE_NOT_FOUND", f"no node type {node_type!r}")
    return _view(registry.get(node_type))


def _view(kind: Any) -> NodeTypeView:
    return NodeTypeView(
        type=kind.type_name, version=kind.version, description=kind.description,
        parameters=kind.json_schema(),
    )  # fmt: skip
