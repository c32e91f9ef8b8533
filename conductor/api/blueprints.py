"""/v1/blueprints: the Blueprint store, each Blueprint validated against the node registry."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from conductor.api.body import JsonBodyRoute
from conductor.api.context import ApiContext
from conductor.api.executions import context, invalid_blueprint, warning_view
from conductor.api.models import ValidationReport
from conductor.api.problems import ApiProblem
from conductor.model.blueprint import Blueprint
from conductor.model.loader import blueprint_from_data
from conductor.model.problems import InvalidBlueprint, Problem
from conductor.validation import ensure_valid
from storage.blueprints import BlueprintExists, BlueprintNotFound, StoredBlueprint
from storage.cursors import InvalidCursor

router = APIRouter(prefix="/v1/blueprints", tags=["blueprints"], route_class=JsonBodyRoute)


def _checked(ctx: ApiContext, body: dict[str, Any]) -> tuple[Blueprint, list[Problem]]:
    """The Blueprint and its warnings; 422 listing every problem."""
    try:
        model = blueprint_from_data(body)
        warnings = ensure_valid(model, ctx.registry, strict=ctx.dispatcher.strict)
    except InvalidBlueprint as exc:
        raise invalid_blueprint(exc) from None
    return model, warnings


def _valid(ctx: ApiContext, body: dict[str, Any]) -> Blueprint:
    return _checked(ctx, body)[0]


def _view(stored: StoredBlueprint) -> dict[str, Any]:
    return stored.model_dump(mode="json")


@router.post("", status_code=201)
def create(body: dict[str, Any], request: Request) -> dict[str, Any]:
    """Store a new Blueprint (revision 1); 409 when the id exists."""
    ctx = context(request)
    try:
        return _view(ctx.blueprints.create(_valid(ctx, body)))
    except BlueprintExists:
        raise ApiProblem(
            409, "CONFLICT", f"Blueprint {body.get('id')!r} exists: PUT replaces it"
        ) from None
    except InvalidBlueprint as exc:
        raise invalid_blueprint(exc) from None


@router.get("")
def list_blueprints(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Stored Blueprints (latest revisions) by id."""
    ctx = context(request)
    try:
        page = ctx.blueprints.list(limit=limit, cursor=cursor)
    except InvalidCursor:
        raise ApiProblem(400, "BAD_REQUEST", "cursor is not one this API returned") from None
    return {"items": [_view(item) for item in page.items], "next_cursor": page.next_cursor}


@router.post("/validate", response_model=ValidationReport)
def validate(body: dict[str, Any], request: Request) -> ValidationReport:
    """Check a Blueprint without storing it: 200 when valid, 422 listing every problem (the
    stored Blueprints its `blueprint` nodes name too, as a submission would)."""
    ctx = context(request)
    model, warnings = _checked(ctx, body)
    try:
        ctx.dispatcher.pinned(model)
    except InvalidBlueprint as exc:
        raise invalid_blueprint(exc) from None
    return ValidationReport(valid=True, warnings=[warning_view(w) for w in warnings])


@router.get("/{blueprint_id}")
def read(
    blueprint_id: str, request: Request, revision: Annotated[int | None, Query(ge=1)] = None
) -> dict[str, Any]:
    """The latest revision, or `?revision=N`."""
    try:
        return _view(context(request).blueprints.get(blueprint_id, revision))
    except (BlueprintNotFound, InvalidBlueprint):
        raise ApiProblem(404, "NOT_FOUND", f"no Blueprint {blueprint_id!r}") from None


@router.put("/{blueprint_id}")
def replace(blueprint_id: str, body: dict[str, Any], request: Request) -> dict[str, Any]:
    """Store the next revision; the body's `id` must be the path's."""
    ctx = context(request)
    model = _valid(ctx, body)
    try:
        return _view(ctx.blueprints.replace(blueprint_id, model))
    except BlueprintNotFound:
        raise ApiProblem(
            404, "NOT_FOUND", f"no Blueprint {blueprint_id!r}: POST creates it"
        ) from None
    except InvalidBlueprint as exc:
        raise invalid_blueprint(exc) from None


@router.delete("/{blueprint_id}", status_code=204)
def delete(blueprint_id: str, request: Request) -> Response:
    """Remove a Blueprint and its revisions (executions keep the version they ran)."""
    try:
        context(request).blueprints.delete(blueprint_id)
    except (BlueprintNotFound, InvalidBlueprint):
        raise ApiProblem(404, "NOT_FOUND", f"no Blueprint {blueprint_id!r}") from None
    return Response(status_code=204)
