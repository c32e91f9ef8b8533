"""POST /v1/hooks/{name}: a webhook delivery, authenticated by its HMAC-SHA256 signature
(`X-Hub-Signature-256`) instead of the API token; 202 with the execution it started."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from conductor.api.executions import context
from conductor.api.problems import ApiProblem
from conductor.hooks import (
    MAX_BODY_BYTES,
    SIGNATURE_HEADER,
    BodyNotJson,
    HookSecretMissing,
    delivery_key,
    inputs_of,
    secret_of,
    signature_valid,
)
from conductor.model.problems import InvalidBlueprint
from conductor.submission import IdempotencyConflict
from storage.blueprints import BlueprintNotFound
from storage.hooks import HookNotFound, RedisHooks

router = APIRouter(prefix="/v1/hooks", tags=["hooks"])
HOOK_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"description": "the execution started (or the one this delivery id started)"},
    401: {"description": "missing or wrong X-Hub-Signature-256"},
    413: {"description": f"a body over {MAX_BODY_BYTES // 1024} KiB"},
}


def store(request: Request) -> RedisHooks:
    """The API process's hook store, made on first use."""
    found: RedisHooks | None = getattr(request.app.state, "hooks", None)
    if found is None:
        settings = context(request).settings
        url = settings.redis_url
        assert url is not None, "the API runs with CONDUCTOR_REDIS_URL"
        found = request.app.state.hooks = RedisHooks.connect(url, settings.redis_master)
    return found


async def _body(request: Request) -> bytes:
    """The raw body, refused past the hooks' limit while it is read."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _too_large()
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_large()
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large() -> ApiProblem:
    return ApiProblem(
        413, "PAYLOAD_TOO_LARGE", f"a hook's body is at most {MAX_BODY_BYTES // 1024} KiB"
    )


@router.post("/{name}", status_code=202, responses=HOOK_RESPONSES)
async def deliver(name: str, request: Request) -> JSONResponse:
    """Start the hook's Blueprint with inputs mapped from the request. The same delivery id
    (`X-Delivery-Id` or `X-GitHub-Delivery`) gives the same execution."""
    body = await _body(request)
    execution_id, status = await run_in_threadpool(_deliver, request, name, body)
    return JSONResponse({"id": execution_id, "status": status}, status_code=202)


def _deliver(request: Request, name: str, body: bytes) -> tuple[str, str]:
    """Look up, authenticate, map, submit (blocking Redis calls: off the event loop)."""
    try:
        hook = store(request).get(name)
    except HookNotFound as exc:
        raise ApiProblem(404, "NOT_FOUND", str(exc)) from None
    try:
        secret = secret_of(hook)
    except HookSecretMissing as exc:
        raise ApiProblem(503, "SERVICE_UNAVAILABLE", str(exc)) from None
    if not signature_valid(secret, body, request.headers.get(SIGNATURE_HEADER)):
        raise ApiProblem(
            401, "UNAUTHORIZED",
            "send X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body with the "
            "hook's secret>",
        )  # fmt: skip
    try:
        inputs = inputs_of(hook, body, request.headers, request.query_params)
    except BodyNotJson as exc:
        raise ApiProblem(400, "BAD_REQUEST", str(exc)) from None
    return _submit(request, hook.blueprint_id, inputs, delivery_key(hook, request.headers))


def _submit(
    request: Request, blueprint_id: str, inputs: dict[str, Any], key: str | None
) -> tuple[str, str]:
    try:
        submitted = context(request).submitter.submit(
            blueprint_id=blueprint_id, inputs=inputs, idempotency_key=key
        )
    except BlueprintNotFound:
        raise ApiProblem(
            404, "NOT_FOUND", f"the hook's Blueprint {blueprint_id!r} is no longer stored"
        ) from None
    except InvalidBlueprint as exc:
        raise ApiProblem(422, "VALIDATION_FAILED", f"the hook's Blueprint: {exc}") from None
    except IdempotencyConflict as exc:
        raise ApiProblem(422, "IDEMPOTENCY_CONFLICT", str(exc)) from None
    return submitted.execution_id, submitted.status
