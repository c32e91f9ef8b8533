"""/v1/schedules: the schedules `conductor beat` fires (token-protected like the rest)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from conductor.api.executions import context
from conductor.api.problems import ApiProblem
from conductor.schedules import InvalidSchedule, new_schedule, schedule_view
from storage.schedules import RedisSchedules, ScheduleExists, ScheduleNotFound

router = APIRouter(prefix="/v1/schedules", tags=["schedules"])


class ScheduleRequest(BaseModel):
    """A new schedule: exactly one of `every` and `cron`."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Letters, digits, '.', '_', '-'; at most 100")
    blueprint_id: str = Field(description="A stored Blueprint's id")
    every: str | int | None = Field(default=None, description="30s, 5m, 1h, 1d, or seconds")
    cron: str | None = Field(default=None, description='Five fields, e.g. "*/5 * * * *"')
    timezone: str | None = Field(default=None, description="The cron's IANA zone (UTC)")
    inputs: dict[str, Any] | None = Field(
        default=None, description="Inputs of each execution; `schedule` and `tick` are added"
    )


def store(request: Request) -> RedisSchedules:
    """The API process's schedule store, made on first use."""
    found: RedisSchedules | None = getattr(request.app.state, "schedules", None)
    if found is None:
        settings = context(request).settings
        url = settings.redis_url
        assert url is not None, "the API runs with CONDUCTOR_REDIS_URL"
        found = request.app.state.schedules = RedisSchedules.connect(url, settings.redis_master)
    return found


def _not_found(exc: ScheduleNotFound) -> ApiProblem:
    return ApiProblem(404, "NOT_FOUND", str(exc))


@router.post("", status_code=201)
def create(body: ScheduleRequest, request: Request) -> dict[str, Any]:
    """Add a schedule; 422 naming each bad field, 409 when the name is taken."""
    try:
        schedule = new_schedule(context(request).blueprints, **body.model_dump())
    except InvalidSchedule as exc:
        errors = [
            {"path": p.field, "code": "VALIDATION_FAILED", "message": p.message}
            for p in exc.problems
        ]
        raise ApiProblem(422, "VALIDATION_FAILED", str(exc), errors=errors) from None
    try:
        store(request).add(schedule)
    except ScheduleExists as exc:
        raise ApiProblem(409, "CONFLICT", str(exc)) from None
    return schedule_view(store(request).get(schedule.name))


@router.get("")
def list_schedules(request: Request) -> list[dict[str, Any]]:
    """Every schedule, by name, with its next tick."""
    return [schedule_view(state) for state in store(request).all()]


@router.get("/{name}")
def read(name: str, request: Request) -> dict[str, Any]:
    """One schedule."""
    try:
        return schedule_view(store(request).get(name))
    except ScheduleNotFound as exc:
        raise _not_found(exc) from None


@router.delete("/{name}", status_code=204)
def delete(name: str, request: Request) -> Response:
    """Remove a schedule (the executions it started stay)."""
    try:
        store(request).remove(name)
    except ScheduleNotFound as exc:
        raise _not_found(exc) from None
    return Response(status_code=204)


@router.post("/{name}/pause")
def pause(name: str, request: Request) -> dict[str, Any]:
    """No tick fires until it is resumed."""
    try:
        return schedule_view(store(request).set_paused(name, True))
    except ScheduleNotFound as exc:
        raise _not_found(exc) from None


@router.post("/{name}/resume")
def resume(name: str, request: Request) -> dict[str, Any]:
    """Fire again from now (ticks missed while paused do not fire)."""
    try:
        return schedule_view(store(request).set_paused(name, False))
    except ScheduleNotFound as exc:
        raise _not_found(exc) from None
