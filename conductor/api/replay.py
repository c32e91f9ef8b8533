"""POST /v1/executions/{id}/replay and GET /v1/executions/{a}/diff/{b}: replaying a finished
execution from history, and comparing two executions' node outputs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from conductor.api.body import JsonBodyRoute
from conductor.api.executions import context, invalid_blueprint
from conductor.api.models import ExecutionAccepted
from conductor.api.problems import ApiProblem
from conductor.history_diff import HistoryDiff, UnknownExecution, diff_executions
from conductor.model.problems import InvalidBlueprint
from conductor.replay import ExecutionUnknown, NotFinal, NotReplayable, Replayer, UnknownNode

router = APIRouter(prefix="/v1/executions", tags=["executions"], route_class=JsonBodyRoute)


class ReplayRequest(BaseModel):
    """POST /v1/executions/{id}/replay: `from_node` re-runs that node (a key as GET
    /v1/executions/{id} lists it) and what depends on it, keeping every other node's recorded
    output; `inputs` replace the recorded inputs of the same names."""

    model_config = ConfigDict(extra="forbid")

    from_node: str | None = Field(default=None, min_length=1)
    inputs: dict[str, Any] | None = None


@router.post("/{execution_id}/replay", status_code=202, response_model=ExecutionAccepted)
def replay(
    execution_id: str, request: Request, body: ReplayRequest | None = None
) -> ExecutionAccepted:
    """Run a finished execution (any final status) again from its recorded Blueprint and
    inputs, as a new execution with `replay_of` set; works after Redis has expired it."""
    ctx = context(request)
    body = body or ReplayRequest()
    replayer = Replayer(ctx.history, ctx.dispatcher)
    try:
        plan = replayer.replay(execution_id, from_node=body.from_node, inputs=body.inputs)
    except ExecutionUnknown as exc:
        raise ApiProblem(404, "NOT_FOUND", str(exc)) from None
    except (NotFinal, NotReplayable) as exc:
        raise ApiProblem(409, "CONFLICT", str(exc)) from None
    except UnknownNode as exc:
        errors = [{"path": "from_node", "code": "VALIDATION_FAILED", "message": str(exc)}]
        raise ApiProblem(400, "VALIDATION_FAILED", str(exc), errors=errors) from None
    except InvalidBlueprint as exc:  # inputs nested too deep, numbers JSON cannot carry
        raise invalid_blueprint(exc, prefix="inputs") from None
    return ExecutionAccepted(id=plan.execution_id, status="queued")


@router.get("/{execution_id}/diff/{other_id}", response_model=HistoryDiff)
def diff(execution_id: str, other_id: str, request: Request) -> HistoryDiff:
    """Per-node output differences from this execution to `other_id` (from history)."""
    ctx = context(request)
    try:
        return diff_executions(ctx.history, ctx.stores.blobs, execution_id, other_id)
    except UnknownExecution as exc:
        raise ApiProblem(404, "NOT_FOUND", str(exc)) from None
