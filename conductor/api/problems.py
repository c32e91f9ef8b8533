"""Errors as `application/problem+json` (RFC 9457) carrying the contract's error codes."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from conductor.model.problems import ErrorCode

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


# The code of a problem that is about the request rather than a Blueprint or an execution.
HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    501: "NOT_IMPLEMENTED",
    503: "SERVICE_UNAVAILABLE",
}
# Every code a problem may carry: the contract's (Blueprints, executions) and the HTTP ones.
PROBLEM_CODES = sorted({*ErrorCode, *HTTP_CODES.values(), "IDEMPOTENCY_CONFLICT"})

_PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "code", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "code": {
            "type": "string",
            "enum": PROBLEM_CODES,
            "description": "what happened: a contract error code (VALIDATION_FAILED, "
            "INVALID_PARAMETERS, NODE_TYPE_NOT_FOUND, CIRCULAR_DEPENDENCY, TRANSPORT_ERROR...) "
            "or one for the request (BAD_REQUEST: a body that does not parse, with where; "
            "UNAUTHORIZED; NOT_FOUND; METHOD_NOT_ALLOWED; CONFLICT: the state does not allow "
            "it; IDEMPOTENCY_CONFLICT: a key reused for another request; PAYLOAD_TOO_LARGE; "
            "SERVICE_UNAVAILABLE)",
        },
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
