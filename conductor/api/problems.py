"""Errors as `application/problem+json` (RFC 9457) carrying the contract's error codes."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

PROBLEM_JSON = "application/problem+json"


class ApiProblem(Exception):
    """An error the API answers with: HTTP status, contract code, a message that says what to do."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}


_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Payload Too Large",
    422: "Unprocessable Content",
    501: "Not Implemented",
    503: "Service Unavailable",
}


_PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "code", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "code": {"type": "string", "description": "the contract's error code"},
        "detail": {"type": "string", "description": "what went wrong and what to do"},
        "errors": {
            "type": "array",
            "items": {"type": "object"},
            "description": "every problem of an invalid Blueprint, each with its path",
        },
    },
}

# Every route may answer these, always as application/problem+json (documented in OpenAPI).
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": _TITLES[status], "content": {PROBLEM_JSON: {"schema": _PROBLEM_SCHEMA}}}
    for status in (400, 401, 404, 409, 413, 422, 503)
}


def problem_response(problem: ApiProblem) -> JSONResponse:
    """The JSON response for a problem."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": _TITLES.get(problem.status, "Error"),
        "status": problem.status,
        "code": problem.code,
        "detail": problem.detail,
    }
    if problem.errors is not None:
        body["errors"] = problem.errors
    return JSONResponse(
        body, status_code=problem.status, headers=problem.headers, media_type=PROBLEM_JSON
    )


async def handle_problem(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI exception handler for ApiProblem."""
    assert isinstance(exc, ApiProblem)
    return problem_response(exc)
