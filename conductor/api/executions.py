"""/v1/executions: submit, read, list, follow (Server-Sent Events)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import asdict
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from conductor.api.body import JsonBodyRoute
from conductor.api.context import ApiContext
from conductor.api.models import (
    BlueprintWarning,
    ExecutionAccepted,
    ExecutionLink,
    ExecutionPage,
    ExecutionRequest,
    ExecutionView,
    GraphNode,
    NodeState,
    NodeWaiting,
)
from conductor.api.problems import ApiProblem
from conductor.api.streams import SlotStream
from conductor.children import Family, family_in_history, family_in_redis
from conductor.control import Control, ControlOutcome
from conductor.event_stream import ExecutionNotFound, follow_events
from conductor.model.breakpoints import InvalidBreakpoints
from conductor.model.loader import blueprint_from_data
from conductor.model.problems import InvalidBlueprint, Problem
from conductor.submission import IdempotencyConflict
from storage.blobs import unpack
from storage.blueprints import BlueprintNotFound
from storage.cursors import InvalidCursor
from storage.events import Event
from storage.execution_meta import ExecutionMeta
from storage.history import ExecutionRecord, NodeRunRecord
from storage.history_state import PROFILE_NUMBERS, profile_numbers
from storage.state import ExecutionStatus, NodeRecord, NodeStatus, Snapshot

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/executions", tags=["executions"], route_class=JsonBodyRoute)


class ControlCommand(StrEnum):
    """The execution-control commands."""

    CANCEL = "cancel"
    PAUSE = "pause"
    RESUME = "resume"
    RETRY = "retry"
    STEP = "step"


def context(request: Request) -> ApiContext:
    """The API's shared context."""
    found: ApiContext = request.app.state.context
    return found


@router.post("", status_code=202, response_model=ExecutionAccepted)
def submit(body: ExecutionRequest, request: Request) -> ExecutionAccepted:
    """Submit an inline or stored Blueprint; the same idempotency_key gives the same execution."""
    ctx = context(request)
    if (body.blueprint is None) == (body.blueprint_id is None):
        raise ApiProblem(422, "VALIDATION_FAILED", "give exactly one of blueprint and blueprint_id")
    try:
        model = blueprint_from_data(body.blueprint) if body.blueprint is not None else None
        submitted = ctx.submitter.submit(
            model,
            blueprint_id=body.blueprint_id,
            inputs=body.inputs,
            idempotency_key=body.idempotency_key,
            admission=body.admission(),
            breakpoints=body.breakpoints,
        )
    except InvalidBreakpoints as exc:
        raise invalid_blueprint(exc) from None
    except InvalidBlueprint as exc:
        raise invalid_blueprint(exc, prefix="blueprint") from None
    except BlueprintNotFound:
        raise ApiProblem(404, "NOT_FOUND", f"no stored Blueprint {body.blueprint_id!r}") from None
    except IdempotencyConflict as exc:
        raise ApiProblem(422, "IDEMPOTENCY_CONFLICT", str(exc)) from None
    idle = [
        BlueprintWarning(path="queue", code="NO_WORKER", message=queue.message)
        for queue in submitted.idle_queues
    ]
    for queue in submitted.idle_queues:
        log.warning("execution %s: %s", submitted.execution_id, queue.message)
    return ExecutionAccepted(
        id=submitted.execution_id,
        status=submitted.status,
        warnings=[warning_view(w, prefix="blueprint") for w in submitted.warnings] + idle,
    )


def warning_view(problem: Problem, prefix: str = "") -> BlueprintWarning:
    """A warning as the API shows it, its path under `prefix`."""
    path = f"{prefix}.{problem.path}" if prefix else problem.path
    return BlueprintWarning(path=path, code=problem.code.value, message=problem.message)


def invalid_blueprint(exc: InvalidBlueprint, prefix: str = "") -> ApiProblem:
    """422 listing every problem with its path."""
    errors = [
        {
            "path": f"{prefix}.{p.path}" if prefix and p.path != "$" else prefix or p.path,
            "code": p.code.value,
            "message": p.message,
        }
        for p in exc.problems
    ]
    code = (
        exc.problems[0].code.value
        if len({p.code for p in exc.problems}) == 1
        else "VALIDATION_FAILED"
    )
    return ApiProblem(
        422, code, f"the Blueprint is invalid ({len(errors)} problem(s))", errors=errors
    )


@router.get("", response_model=ExecutionPage)
def list_executions(
    request: Request,
    status: ExecutionStatus | None = None,
    blueprint_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: str | None = None,
) -> ExecutionPage:
    """Recorded executions, newest first (from the history store)."""
    ctx = context(request)
    try:
        page = ctx.history.list_executions(
            status=status, blueprint_id=blueprint_id, limit=limit, cursor=cursor
        )
    except InvalidCursor:
        raise ApiProblem(400, "BAD_REQUEST", "cursor is not one this API returned") from None
    return ExecutionPage(
        items=[_from_history(record, [], Family()) for record in page.items],
        next_cursor=page.next_cursor,
    )


@router.get("/{execution_id}", response_model=ExecutionView)
def get_execution(execution_id: str, request: Request) -> ExecutionView:
    """Status, per-node states and timings, and the result or error."""
    ctx = context(request)
    snapshot = ctx.stores.state.snapshot(execution_id, [])
    if snapshot.execution is not None:
        return _from_redis(ctx, execution_id, snapshot)
    record = ctx.history.execution(execution_id)
    if record is None:
        raise ApiProblem(404, "NOT_FOUND", f"no execution {execution_id!r}")
    runs = ctx.history.node_runs(execution_id)
    return _from_history(record, runs, family_in_history(ctx.history, execution_id, runs))


@router.get(
    "/{execution_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
def events(
    execution_id: str,
    request: Request,
    last_event_id: Annotated[str | None, Header()] = None,
    after: Annotated[int | None, Query(ge=0)] = None,
) -> StreamingResponse:
    """Server-Sent Events: the history so far, then live, ending after the terminal event.
    Reconnect with Last-Event-ID (the last `id:` seen) to resume with no gap and no repeat."""
    ctx = context(request)
    after_seq = after if after is not None else _seq(last_event_id)
    known = ctx.stores.state.snapshot(execution_id, []).execution is not None
    if not known and ctx.history.execution(execution_id) is None:
        raise ApiProblem(404, "NOT_FOUND", f"no execution {execution_id!r}")
    ctx.streams.take()  # 503 with Retry-After past CONDUCTOR_API_MAX_STREAMS
    try:  # subscribed and the backlog read before the 200: a failure is still a problem
        stream = follow_events(
            ctx.events, ctx.stores.state, ctx.history, execution_id, after_seq=after_seq
        )
    except ExecutionNotFound:  # expired between the check and the read
        ctx.streams.give_back()
        raise ApiProblem(404, "NOT_FOUND", f"no execution {execution_id!r}") from None
    except BaseException:
        ctx.streams.give_back()
        raise
    return SlotStream(
        _sse(stream),
        ctx.streams,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _sse(events: Iterator[Event | None]) -> Iterator[str]:
    """Server-Sent Events framing: `id` is the seq (for Last-Event-ID), `event` the type."""
    try:
        for event in events:
            if event is None:
                yield ": keep-alive\n\n"
                continue
            yield f"id: {event.seq}\nevent: {event.type.value}\ndata: {event.model_dump_json()}\n\n"
    except ExecutionNotFound:  # expired between the check and the read
        return


def _waiting(record: NodeRecord, parked: dict[str, str]) -> NodeWaiting | None:
    """What a parked node waits for (the waiting set keeps a cancelled one: not parked)."""
    if record.key not in parked or record.status is not NodeStatus.RUNNING or record.held:
        return None
    return NodeWaiting(signal=parked[record.key] or None)


def _seq(last_event_id: str | None) -> int:
    if last_event_id is None:
        return 0
    if not last_event_id.strip().isdigit():
        raise ApiProblem(400, "BAD_REQUEST", "Last-Event-ID must be an event's seq (a number)")
    return int(last_event_id)


def _from_redis(ctx: ApiContext, execution_id: str, snapshot: Snapshot) -> ExecutionView:
    meta = snapshot.execution
    assert meta is not None, "only called for an execution in Redis"
    text = ctx.stores.state.result(execution_id)
    result: dict[str, Any] | None = unpack(text, ctx.stores.blobs) if text else None
    parked = ctx.stores.state.parked(execution_id)
    nodes = [
        NodeState(
            waiting=_waiting(record, parked),
            node_id=record.key,
            status=record.status.value,
            attempts=record.attempts,
            worker=record.worker,
            started_at=_s(record.started_ms),
            finished_at=_s(record.finished_ms),
            duration_ms=(record.finished_ms - record.started_ms)
            if record.started_ms and record.finished_ms
            else None,
            error=record.error,
            **profile_numbers(record.profile),
        )
        for record in sorted(snapshot.nodes.values(), key=lambda r: (r.started_ms or 0, r.key))
    ]
    stored = ctx.stores.state.stored_plan(execution_id)
    graph = None
    if stored is not None:
        graph = [
            GraphNode(
                key=node.key,
                id=node.id,
                type=node.type,
                name=node.name,
                parameters=node.parameters,
                depends_on=node.depends_on,
            )
            for node in stored.plan.nodes.values()
        ]
    return ExecutionView(
        id=execution_id,
        status=meta.status.value,
        graph=graph,
        blueprint_id=meta.blueprint_id or None,
        blueprint_version=meta.blueprint_version,
        replay_of=meta.replay_of,
        created_at=_s(meta.created_ms),
        started_at=_s(meta.started_ms),
        finished_at=_s(meta.finished_ms),
        nodes=nodes,
        result=result,
        error=(result or {}).get("error"),
        **meta.model_dump(include={"priority", "concurrency_key", "queued_reason"}),
        line_position=_line_position(ctx, execution_id, meta),
        **_links(family_in_redis(ctx.stores.state, execution_id)),
    )


def _line_position(ctx: ApiContext, execution_id: str, meta: ExecutionMeta) -> int | None:
    """1 for the next in its concurrency key's line; None when it is not waiting in one."""
    if meta.queued_reason is None or meta.concurrency_key is None or ctx.stores.slots is None:
        return None
    return ctx.stores.slots.position(meta.concurrency_key, execution_id)


def _links(found: Family) -> dict[str, Any]:
    parent = found.parent
    return {
        "parent": None if parent is None else ExecutionLink(**asdict(parent)),
        "children": [ExecutionLink(**asdict(child)) for child in found.children],
    }


def _from_history(
    record: ExecutionRecord, runs: list[NodeRunRecord], found: Family
) -> ExecutionView:
    return ExecutionView(
        **_links(found),
        id=record.id,
        status=record.status.value,
        blueprint_id=record.blueprint_id or None,
        blueprint_version=record.blueprint_version,
        replay_of=record.replay_of,
        created_at=record.created_at,
        started_at=record.started_at,
        finished_at=record.finished_at,
        nodes=[
            NodeState(
                node_id=run.node_id,
                status=run.status.value,
                attempts=run.attempts,
                worker=run.worker,
                started_at=run.started_at,
                finished_at=run.finished_at,
                duration_ms=run.duration_ms,
                error=run.error,
                **run.model_dump(include=set(PROFILE_NUMBERS)),
            )
            for run in runs
        ],
        result=record.result,
        error=record.error,
    )


def _s(ms: int | None) -> float | None:
    return None if ms is None else ms / 1000


@router.post("/{execution_id}/{command}", response_model=ExecutionAccepted)
def control(execution_id: str, command: ControlCommand, request: Request) -> ExecutionAccepted:
    """cancel: no node starts after it and running ones stop within seconds; pause: running
    nodes finish, no new one starts; resume: runs what has not finished (to the next
    breakpoint); retry: re-runs a failed or cancelled execution's failed and not-yet-run nodes,
    keeping successful outputs; step: a paused execution runs the nodes whose inputs are all
    there, then pauses before the next."""
    ctx = context(request)
    outcome = getattr(Control(ctx.dispatcher), command.value)(execution_id)
    if outcome is ControlOutcome.NOT_FOUND:
        raise ApiProblem(404, "NOT_FOUND", f"no live execution {execution_id!r}")
    meta = ctx.stores.state.snapshot(execution_id, []).execution
    status = meta.status.value if meta is not None else "unknown"
    if outcome is ControlOutcome.CONFLICT:
        raise ApiProblem(409, "CONFLICT", f"cannot {command.value} an execution that is {status}")
    return ExecutionAccepted(id=execution_id, status=status)
