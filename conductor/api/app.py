"""The FastAPI application: routes, bearer-token auth, problem+json errors, body limit."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import redis
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from conductor.api import blueprints, executions, system
from conductor.api.context import ApiContext
from conductor.api.limits import BodyLimit
from conductor.api.problems import (
    HTTP_CODES,
    PROBLEM_RESPONSES,
    ApiProblem,
    handle_problem,
    problem_response,
)
from conductor.dispatch import DispatchFailed

OPEN_PATHS = frozenset({"/healthz"})
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
        description="Submit Atomiton Blueprints and follow their executions.",
        lifespan=_lifespan,
    )
    app.state.context = context
    app.include_router(executions.router, responses=PROBLEM_RESPONSES)
    app.include_router(blueprints.router, responses=PROBLEM_RESPONSES)
    app.include_router(system.router, responses=PROBLEM_RESPONSES)
    app.add_exception_handler(ApiProblem, handle_problem)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(redis.ConnectionError, _redis_down)
    app.add_exception_handler(redis.TimeoutError, _redis_down)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(DispatchFailed, _redis_down)
    if context.settings.api_token:
        app.middleware("http")(_bearer(context.settings.api_token))
    app.add_middleware(BodyLimit)
    return app


def _bearer(
    token: str,
) -> Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]:
    expected = f"Bearer {token}".encode()

    async def check(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if request.url.path in OPEN_PATHS:
            return await call_next(request)
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            problem = ApiProblem(
                401, "UNAUTHORIZED", "send Authorization: Bearer <CONDUCTOR_API_TOKEN>",
                headers={"WWW-Authenticate": "Bearer"},
            )  # fmt: skip
            return problem_response(problem)
        return await call_next(request)

    return check


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
