"""POST /v1/executions/{id}/signals/{name}: deliver a payload to the execution's
`wait-for-signal` nodes (docs/waits.md)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from pydantic import BaseModel, ConfigDict

from conductor.api.body import JsonBodyRoute
from conductor.api.context import ApiContext
from conductor.api.problems import ApiProblem
from conductor.signals import SignalRefused, Signals
from storage.waits import Sent

router = APIRouter(prefix="/v1/executions", tags=["executions"], route_class=JsonBodyRoute)


class SignalAccepted(BaseModel):
    """202: the signal is kept for the execution; `woke` lists the nodes that were parked
    waiting for it (empty: the next node to wait for it takes it at once)."""

    model_config = ConfigDict(extra="forbid")

    execution_id: str
    signal: str
    woke: list[str]


@router.post("/{execution_id}/signals/{name}", status_code=202, response_model=SignalAccepted)
def send_signal(
    execution_id: str,
    name: str,
    request: Request,
    payload: Annotated[Any, Body(description="Any JSON: the waiting node's result")] = None,
) -> SignalAccepted:
    """Send signal `name` with the body as its payload. 404: no such execution; 409: it is
    over, no wait-for-signal node of it waits for `name`, or it keeps 100 signals already;
    422: a name or payload that is not acceptable."""
    ctx: ApiContext = request.app.state.context
    try:
        receipt = Signals(ctx.dispatcher).send(execution_id, name, payload)
    except SignalRefused as exc:
        raise _problem(ctx, execution_id, exc) from None
    return SignalAccepted(execution_id=execution_id, signal=name, woke=list(receipt.woken))


def _problem(ctx: ApiContext, execution_id: str, exc: SignalRefused) -> ApiProblem:
    if exc.invalid:
        return ApiProblem(422, "VALIDATION_FAILED", str(exc))
    if exc.reason is Sent.NOT_FOUND:  # gone from Redis: finished long ago, or never was
        record = ctx.history.execution(execution_id)
        if record is None:
            return ApiProblem(404, "NOT_FOUND", str(exc))
        status = record.status.value
        return ApiProblem(409, "CONFLICT", f"execution {execution_id!r} is {status}")
    return ApiProblem(409, "CONFLICT", str(exc))
