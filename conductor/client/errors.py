"""The client's errors, one per way a request can fail, and the mapping from responses."""

from __future__ import annotations

import email.utils
import time
from typing import Any

import httpx
from pydantic import ValidationError

from conductor.client.results import Result
from conductor.model.problems import ErrorCode, Problem


class ConductorError(Exception):
    """The API refused a request or could not be reached; `status` and `code` as it answered."""

    hint = "see the API server's log for the cause"

    def __init__(
        self,
        detail: str,
        *,
        status: int | None = None,
        code: str | None = None,
        hint: str | None = None,
        more: str = "",
    ) -> None:
        self.detail, self.status, self.code = detail, status, code
        self.hint = hint or self.hint
        answered = " ".join(str(part) for part in (status, code) if part)
        answered = f" ({answered})" if answered else ""
        super().__init__(f"{detail}{answered}: {self.hint}{more}")


class InvalidRequestError(ConductorError):
    """400 or 413: the request itself is wrong (a bad cursor, a body too large)."""

    hint = "change the request as the message says"


class InvalidBlueprintError(InvalidRequestError):
    """422: the Blueprint (or the submission) is invalid; `errors` names every field by path."""

    hint = "fix the fields named below (validate_blueprint() checks without submitting)"

    def __init__(
        self,
        detail: str,
        errors: list[Problem],
        *,
        status: int | None = 422,
        code: str | None = None,
    ) -> None:
        self.errors = errors
        lines = "".join(f"\n  {p.path}: {p.message} [{p.code}]" for p in errors)
        super().__init__(detail, status=status, code=code, more=lines)

    @property
    def paths(self) -> list[str]:
        """The path of every invalid field, such as `blueprint.nodes[2].parameters.url`."""
        return [problem.path for problem in self.errors]


class NotFoundError(ConductorError):
    """404: no such execution or Blueprint."""

    hint = "check the id (list_executions() and list_blueprints() show what exists)"


class ConflictError(ConductorError):
    """409: the current state does not allow it (cancelling a finished execution, creating a
    Blueprint id that exists)."""

    hint = "read the current state (get() or get_blueprint()) and act on that"


class AuthError(ConductorError):
    """401 or 403: the bearer token is missing or wrong."""

    hint = "pass token= the server's CONDUCTOR_API_TOKEN to ConductorClient"


class UnavailableError(ConductorError):
    """503 (or no answer at all): Redis or the API is down; `retry_after` in seconds if known."""

    def __init__(
        self,
        detail: str,
        *,
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.retry_after = retry_after
        hint = (
            f"try again in {retry_after:g} s"
            if retry_after is not None
            else "check that `conductor api` runs at that address and Redis is up, then retry"
        )
        super().__init__(detail, status=status, code=code, hint=hint)


class WaitTimeout(ConductorError):
    """wait() gave up before the execution ended (the execution itself keeps running)."""

    def __init__(self, execution_id: str, timeout_s: float) -> None:
        self.execution_id, self.timeout_s = execution_id, timeout_s
        super().__init__(
            f"execution {execution_id} did not end within {timeout_s:g} s",
            hint=f"it keeps running: wait() again, or cancel({execution_id!r})",
        )


class ExecutionFailed(ConductorError):
    """run(): the execution ended without success; `result` holds its result object."""

    hint = "the result's trace shows which node failed and why; fix it and submit again"

    def __init__(self, result: Result) -> None:
        self.result = result
        error = result.error
        why = f"{error.code}: {error.message}" if error else "no error was recorded"
        node = f" in node {error.node_id!r}" if error and error.node_id else ""
        super().__init__(f"execution {result.id} {result.status}{node}: {why}")
        self.code = error.code if error else None


ERRORS: dict[int, type[ConductorError]] = {
    400: InvalidRequestError,
    401: AuthError,
    403: AuthError,
    404: NotFoundError,
    409: ConflictError,
    413: InvalidRequestError,
}


def raise_for_problem(response: httpx.Response) -> None:
    """Raise the ConductorError for an error response (problem+json), nothing for success."""
    if response.is_success:
        return
    problem = _problem(response)
    detail = str(problem.get("detail") or response.reason_phrase or "request failed")
    status, code = response.status_code, problem.get("code")
    if status == 422:
        raise InvalidBlueprintError(detail, _problems(problem), status=status, code=code)
    if status in (502, 503, 504):
        retry_after = _retry_after(response.headers.get("retry-after"))
        raise UnavailableError(detail, status=status, code=code, retry_after=retry_after)
    hint = "this server does not offer it yet: upgrade Conductor" if status == 501 else None
    raise ERRORS.get(status, ConductorError)(detail, status=status, code=code, hint=hint)


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:  # not JSON: a proxy's page, say
        return {"detail": f"{response.reason_phrase}: {response.text[:200]}"}
    return body if isinstance(body, dict) else {}


def _problems(problem: dict[str, Any]) -> list[Problem]:
    found = []
    for item in problem.get("errors") or []:
        try:
            found.append(Problem.model_validate(item))
        except ValidationError:  # a code this client does not know: keep path and message
            found.append(
                Problem(
                    path=str(item.get("path", "$")),
                    code=ErrorCode.VALIDATION_FAILED,
                    message=str(item.get("message", item)),
                )
            )
    return found


def _retry_after(value: str | None) -> float | None:
    """Retry-After as seconds (it may be a number or an HTTP date)."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
