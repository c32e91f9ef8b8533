"""Liveness, readiness, metrics and the node catalogue."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

from conductor.api.executions import context
from conductor.api.models import NodeTypeView
from conductor.api.problems import ApiProblem
from storage.state import ExecutionStatus
from workers.config import DEFAULT_QUEUE

router = APIRouter(tags=["system"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process answers (no dependencies checked, no token needed)."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> dict[str, str]:
    """Redis and the history store answer; 503 otherwise."""
    ctx = context(request)
    ctx.client.ping()
    try:
        ctx.history.list_executions(limit=1)
    except Exception as exc:  # any failure of the store means not ready
        raise ApiProblem(
            503, "INTERNAL_ERROR", f"history store: {exc}", headers={"Retry-After": "5"}
        ) from None
    return {"status": "ready"}


@router.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    """Prometheus metrics: executions by status (history), queue depth."""
    ctx = context(request)
    registry = CollectorRegistry()
    by_status = Gauge(
        "conductor_executions", "Recorded executions by status", ["status"], registry=registry
    )
    for status in ExecutionStatus:
        page = ctx.history.list_executions(status=status, limit=1000)
        by_status.labels(status.value).set(len(page.items))
    depth = Gauge(
        "conductor_queue_depth", "Messages waiting per queue", ["queue"], registry=registry
    )
    depth.labels(DEFAULT_QUEUE).set(int(ctx.client.llen(DEFAULT_QUEUE)))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


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
