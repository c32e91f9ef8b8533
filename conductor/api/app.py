"""The FastAPI application: routes, bearer-token auth, problem+json errors, body limit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from conductor.api import (
    blueprints,
    execution_nodes,
    executions,
    hooks,
    replay,
    schedules,
    signals,
    system,
    ws,
)
from conductor.api.context import ApiContext
from conductor.api.guard import RequestGuard
from conductor.api.limits import BodyLimit
from conductor.api.problems import (
    HTTP_CODES,
    PROBLEM_RESPONSES,
    ApiProblem,
    handle_problem,
    problem_response,
)
from conductor.api.unforeseen import Unforeseen
from conductor.dispatch import DispatchFailed
from storage.redis_client import TRANSPORT_ERRORS

CONSOLE_DIR = Path(__file__).parent / "console"
DESCRIPTION = """Submit Atomiton Blueprints and follow their executions.

The web console is at [/ui/](/ui/).

**WebSocket `GET /v1/ws`** (JSON text messages; a request's `ref` is echoed in its reply):

- `{"op": "auth", "token": T}`: first, when the API has a token and the handshake carried
  no `Authorization` header; replies `{"type": "authenticated"}`, or closes with 1008.
- `{"op": "subscribe", "execution_id": ID, "after": SEQ}`: replies `{"type": "subscribed"}`,
  then `{"type": "event", "event": {...}}` for each event with seq > SEQ (the SSE objects),
  ending with the terminal one; resume after a drop with the last seq seen.
- `{"op": "unsubscribe", "execution_id": ID}`: replies `{"type": "unsubscribed"}`.
- `{"op": "subscribe_all"}`: every execution's `execution.*` events from now on.
- `{"op": "cancel" | "pause" | "resume" | "retry" | "step", "execution_id": ID}`: replies
  `{"type": "control", "op": ..., "status": ...}`.
- `{"op": "submit", "blueprint_id": ID}` (or `"blueprint": {...}`; `"inputs": {...}`):
  replies `{"type": "submitted", "execution_id": ...}`.

Problems come as `{"type": "error", "code": ..., "message": ...}` (BAD_MESSAGE, NOT_FOUND,
CONFLICT, VALIDATION_FAILED). Too many connections close with 1013, too many subscriptions
on one connection or a failed sign-in with 1008, each with a reason.
"""
THREADS = 1000


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Each open event stream holds a worker thread while it waits for events: make room for
    # many, so streams never starve the other endpoints.
    anyio.to_thread.current_default_thread_limiter().total_tokens = THREADS
    yield


def create_api(context: ApiContext) -> FastAPI:
    """The API over `context`."""
    app = FastAPI(
        title="Conductor",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=_lifespan,
    )
    app.state.context = context
    # before executions: its POST /{id}/{command} would take /{id}/replay
    app.include_router(replay.router, responses=PROBLEM_RESPONSES)
    app.include_router(executions.router, responses=PROBLEM_RESPONSES)
    app.include_router(execution_nodes.router, responses=PROBLEM_RESPONSES)
    app.include_router(blueprints.router, responses=PROBLEM_RESPONSES)
    app.include_router(system.router, responses=PROBLEM_RESPONSES)
    app.include_router(schedules.router, responses=PROBLEM_RESPONSES)
    app.include_router(hooks.router, responses=PROBLEM_RESPONSES)
    app.include_router(signals.router, responses=PROBLEM_RESPONSES)
    app.include_router(ws.router)
    ws.install(app.state)
    app.add_api_route("/ui", _to_console, include_in_schema=False)
    app.mount("/ui/", StaticFiles(directory=CONSOLE_DIR, html=True), name="console")
    app.add_exception_handler(ApiProblem, handle_problem)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    for error in TRANSPORT_ERRORS:
        app.add_exception_handler(error, _redis_down)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(DispatchFailed, _redis_down)
    app.add_middleware(Unforeseen)  # innermost of these: under the body limit and the guard
    app.add_middleware(BodyLimit)
    # Outermost (added last): framing and the token are checked before any body is read.
    app.add_middleware(RequestGuard, token=context.settings.api_token)
    return app


async def _to_console() -> RedirectResponse:
    return RedirectResponse("/ui/")


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "path": ".".join(str(part) for part in err["loc"]),
            "code": "VALIDATION_FAILED",
            "message": err["msg"],
        }
        for err in exc.errors()
    ]
    return problem_response(
        ApiProblem(422, "VALIDATION_FAILED", "the request is invalid", errors=errors)
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    """Routing errors (unknown path 404, wrong method 405) as problems too."""
    assert isinstance(exc, StarletteHTTPException)
    code = HTTP_CODES.get(exc.status_code, "INTERNAL_ERROR")
    problem = ApiProblem(
        exc.status_code,
        code,
        str(exc.detail),
        errors=getattr(exc, "errors", None),  # BodyInvalid: where the body failed to parse
        headers=dict(exc.headers or {}),
    )
    return problem_response(problem)


async def _redis_down(request: Request, exc: Exception) -> JSONResponse:
    problem = ApiProblem(
        503, "TRANSPORT_ERROR", f"Redis is unreachable, try again: {exc}",
        headers={"Retry-After": "5"},
    )  # fmt: skip
    return problem_response(problem)
