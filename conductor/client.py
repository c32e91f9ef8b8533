"""The Python client of the HTTP API: submit Blueprints, follow and control executions."""

from __future__ import annotations

import email.utils
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, TypeAlias
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from conductor.api.models import ExecutionAccepted as Submitted
from conductor.api.models import ExecutionPage, ValidationReport
from conductor.api.models import ExecutionView as Execution
from conductor.model.blueprint import Blueprint
from conductor.model.loader import MAX_BYTES, parse_document
from conductor.model.problems import ErrorCode, InvalidBlueprint, Problem
from storage.blueprints import BlueprintPage, StoredBlueprint, content_of
from storage.events import Event

__all__ = [
    "AuthError",
    "BlueprintPage",
    "ConductorClient",
    "ConductorError",
    "ConflictError",
    "Execution",
    "ExecutionFailed",
    "ExecutionPage",
    "InvalidBlueprintError",
    "InvalidRequestError",
    "NotFoundError",
    "Result",
    "ResultError",
    "StoredBlueprint",
    "Submitted",
    "UnavailableError",
    "ValidationReport",
    "WaitTimeout",
]

# A Blueprint as the client takes it: a model, parsed data, or the path of a YAML/JSON file.
BlueprintSource: TypeAlias = Blueprint | Mapping[str, Any] | str | os.PathLike[str]

# The server sends a keep-alive every 15 s; a stream silent for longer than this is dead.
STREAM_READ_TIMEOUT_S = 40.0
# Pauses before reconnecting an event stream that broke; one more failure gives up.
RECONNECT_DELAYS_S = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
MAX_RETRY_AFTER_S = 30.0

# Responses: a newer server may add fields, and an older client must keep reading them.
_RESPONSE = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")


class ResultError(BaseModel):
    """Why an execution did not succeed: a contract error code, a message, the node."""

    model_config = _RESPONSE

    code: str
    message: str
    node_id: str | None = Field(default=None, alias="nodeId")


class TraceEntry(BaseModel):
    """One node's part in an execution."""

    model_config = _RESPONSE

    node_id: str = Field(alias="nodeId")
    status: str
    attempts: int = 0
    worker: str | None = None
    start_offset_ms: int | None = None
    duration_ms: int | None = None
    error: dict[str, Any] | None = None


class Result(BaseModel):
    """The result object of a finished execution (CONTRACT section 2)."""

    model_config = _RESPONSE

    id: str
    status: str
    success: bool
    data: dict[str, Any] = Field(default_factory=dict)
    error: ResultError | None = None
    duration_ms: int | None = None
    executed_nodes: list[str] = Field(default_factory=list, alias="executedNodes")
    trace: list[TraceEntry] = Field(default_factory=list)


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


_ERRORS: dict[int, type[ConductorError]] = {
    400: InvalidRequestError,
    401: AuthError,
    403: AuthError,
    404: NotFoundError,
    409: ConflictError,
    413: InvalidRequestError,
}


class ConductorClient:
    """A synchronous client of one Conductor API server; close it, or use it with `with`."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        timeout_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout_s, transport=transport
        )

    # Executions

    def submit(
        self,
        blueprint: BlueprintSource | None = None,
        *,
        blueprint_id: str | None = None,
        inputs: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Submitted:
        """Submit an inline Blueprint or a stored one's id; the same idempotency_key always
        gives the same execution."""
        if (blueprint is None) == (blueprint_id is None):
            raise ValueError("give exactly one of blueprint and blueprint_id")
        body: dict[str, Any] = {"inputs": dict(inputs or {})}
        if blueprint is not None:
            body["blueprint"] = blueprint_body(blueprint)
        else:
            body["blueprint_id"] = blueprint_id
        if idempotency_key is not None:
            body["idempotency_key"] = idempotency_key
        return Submitted.model_validate(self._json("POST", "/v1/executions", json=body))

    def get(self, execution_id: str) -> Execution:
        """Status, per-node states and timings, and the result once it ended."""
        return Execution.model_validate(self._json("GET", _execution(execution_id)))

    def wait(self, execution_id: str, timeout_s: float | None = None) -> Result:
        """Follow the execution's events until it ends and return its result; WaitTimeout
        after `timeout_s` (the execution is not touched)."""
        # The stream ends with the terminal event (or _follow raises); an earlier one in it
        # ended a run that a retry took up again.
        terminal = None
        for event in self._follow(execution_id, 0, timeout_s):
            if event.type.is_terminal:
                terminal = event
        assert terminal is not None, "the event stream ends with the terminal event"
        return self._result_of(terminal)

    def run(
        self,
        blueprint: BlueprintSource | None = None,
        *,
        blueprint_id: str | None = None,
        inputs: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        timeout_s: float | None = None,
    ) -> Result:
        """submit() then wait(); raises ExecutionFailed unless the execution succeeded."""
        submitted = self.submit(
            blueprint, blueprint_id=blueprint_id, inputs=inputs, idempotency_key=idempotency_key
        )
        result = self.wait(submitted.id, timeout_s)
        if not result.success:
            raise ExecutionFailed(result)
        return result

    def events(self, execution_id: str, after_seq: int = 0) -> Iterator[Event]:
        """The execution's events with seq > after_seq, in order, until the terminal one;
        a dropped connection is resumed with Last-Event-ID."""
        return self._follow(execution_id, after_seq, None)

    def cancel(self, execution_id: str) -> Submitted:
        """End the execution as cancelled; ConflictError if it already ended."""
        return self._control(execution_id, "cancel")

    def pause(self, execution_id: str) -> Submitted:
        """Start no new node (running ones finish); ConflictError unless queued or running."""
        return self._control(execution_id, "pause")

    def resume(self, execution_id: str) -> Submitted:
        """Continue a paused execution from its stored outputs; ConflictError unless paused."""
        return self._control(execution_id, "resume")

    def retry(self, execution_id: str) -> Submitted:
        """Run the failed and not-yet-run nodes again (a server without it answers 501)."""
        return self._control(execution_id, "retry")

    def list_executions(
        self,
        status: str | None = None,
        blueprint_id: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> ExecutionPage:
        """Recorded executions, newest first; pass `next_cursor` back for the next page."""
        params = _params(status=status, blueprint_id=blueprint_id, limit=limit, cursor=cursor)
        return ExecutionPage.model_validate(self._json("GET", "/v1/executions", params=params))

    # Blueprints

    def create_blueprint(self, blueprint: BlueprintSource) -> StoredBlueprint:
        """Store a new Blueprint (revision 1); ConflictError when its id exists."""
        body = blueprint_body(blueprint)
        return StoredBlueprint.model_validate(self._json("POST", "/v1/blueprints", json=body))

    def get_blueprint(self, blueprint_id: str, revision: int | None = None) -> StoredBlueprint:
        """The latest revision of a stored Blueprint, or the given one."""
        params = _params(revision=revision)
        data = self._json("GET", _blueprint(blueprint_id), params=params)
        return StoredBlueprint.model_validate(data)

    def replace_blueprint(self, blueprint_id: str, blueprint: BlueprintSource) -> StoredBlueprint:
        """Store the next revision; the Blueprint's own id must be `blueprint_id`."""
        body = blueprint_body(blueprint)
        return StoredBlueprint.model_validate(
            self._json("PUT", _blueprint(blueprint_id), json=body)
        )

    def delete_blueprint(self, blueprint_id: str) -> None:
        """Remove a Blueprint and all its revisions."""
        self._request("DELETE", _blueprint(blueprint_id))

    def list_blueprints(self, limit: int = 50, cursor: str | None = None) -> BlueprintPage:
        """Stored Blueprints by id; pass `next_cursor` back for the next page."""
        data = self._json("GET", "/v1/blueprints", params=_params(limit=limit, cursor=cursor))
        items = [StoredBlueprint.model_validate(item) for item in data["items"]]
        return BlueprintPage(items=items, next_cursor=data.get("next_cursor"))

    def validate_blueprint(self, blueprint: BlueprintSource) -> ValidationReport:
        """Check a Blueprint without storing or running it; `errors` lists every problem."""
        try:
            body = blueprint_body(blueprint)
            return ValidationReport.model_validate(
                self._json("POST", "/v1/blueprints/validate", json=body)
            )
        except InvalidBlueprintError as exc:
            errors = [problem.model_dump(mode="json") for problem in exc.errors]
            return ValidationReport(valid=False, errors=errors)

    # Plumbing

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def __enter__(self) -> ConductorClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _control(self, execution_id: str, command: str) -> Submitted:
        path = f"{_execution(execution_id)}/{command}"
        return Submitted.model_validate(self._json("POST", path))

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._request(method, path, **kwargs).json()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        raise_for_problem(response)
        return response

    def _unreachable(self, exc: httpx.TransportError) -> UnavailableError:
        if isinstance(exc, httpx.TimeoutException):
            return UnavailableError(f"no answer from {self.base_url} in time ({exc!r})")
        return UnavailableError(f"cannot reach Conductor at {self.base_url} ({exc!r})")

    def _follow(
        self, execution_id: str, after_seq: int, timeout_s: float | None
    ) -> Iterator[Event]:
        """Events after `after_seq` until the terminal one, reconnecting with Last-Event-ID."""
        deadline = _Deadline(execution_id, timeout_s)
        last, failures, ended = after_seq, 0, False
        while True:
            read_s = deadline.read_timeout_s()
            broken: Exception | None = None
            try:
                with self._event_stream(execution_id, last, read_s) as lines:
                    for event in sse_events(lines):
                        if event is not None and event.seq > last:
                            failures, last = 0, event.seq
                            ended = event.type.is_terminal  # the last one, unless retried
                            yield event
                        if deadline.reconnect_sooner(read_s):
                            break
                    else:  # the server ends the stream after the terminal event
                        if ended:
                            return
                        broken = ConnectionError("the stream ended before the execution did")
            except (httpx.TransportError, UnavailableError) as exc:
                broken = exc
            if broken is not None:
                deadline.check()
                failures = self._pause(failures, broken, deadline)

    def _pause(self, failures: int, exc: Exception, deadline: _Deadline) -> int:
        """Wait before reconnecting; give up after the last delay."""
        if failures >= len(RECONNECT_DELAYS_S):
            raise UnavailableError(
                f"the event stream from {self.base_url} broke {failures + 1} times in a row"
                f" (last: {exc})"
            ) from exc
        delay_s = RECONNECT_DELAYS_S[failures]
        if isinstance(exc, UnavailableError) and exc.retry_after is not None:
            delay_s = min(exc.retry_after, MAX_RETRY_AFTER_S)
        time.sleep(deadline.cap(delay_s))
        deadline.check()
        return failures + 1

    def _event_stream(self, execution_id: str, after_seq: int, read_s: float) -> _Stream:
        headers = {"Accept": "text/event-stream"}
        if after_seq:
            headers["Last-Event-ID"] = str(after_seq)
        request = self._http.build_request(
            "GET",
            f"{_execution(execution_id)}/events",
            headers=headers,
            timeout=httpx.Timeout(min(self.timeout_s, read_s), read=read_s),
        )
        response = self._http.send(request, stream=True)
        if not response.is_success:
            response.read()
            response.close()
            raise_for_problem(response)
        return _Stream(response)

    def _result_of(self, event: Event) -> Result:
        result = event.data.get("result")
        if isinstance(result, dict) and "success" in result:
            return Result.model_validate(result)
        # A large result travels as a blob reference: the API reads it back.
        stored = self.get(event.execution_id).result
        if stored is None:
            raise ConductorError(f"execution {event.execution_id} ended but has no result")
        return Result.model_validate(stored)


class _Stream:
    """An open event-stream response as a context manager over its lines."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response

    def __enter__(self) -> Iterator[str]:
        return self.response.iter_lines()

    def __exit__(self, *exc: object) -> None:
        self.response.close()


class _Deadline:
    """The time wait() has left; none when it waits for ever."""

    def __init__(self, execution_id: str, timeout_s: float | None) -> None:
        self.execution_id, self.timeout_s = execution_id, timeout_s
        self.at = None if timeout_s is None else time.monotonic() + timeout_s
        # How far past the deadline a quiet stream may block before we reconnect sooner.
        self.slack_s = 0.0 if timeout_s is None else max(0.5, timeout_s / 10)

    def remaining_s(self) -> float | None:
        """Seconds left, or None."""
        return None if self.at is None else self.at - time.monotonic()

    def check(self) -> None:
        """Raise WaitTimeout once the time is up."""
        left = self.remaining_s()
        if left is not None and left <= 0:
            assert self.timeout_s is not None
            raise WaitTimeout(self.execution_id, self.timeout_s)

    def read_timeout_s(self) -> float:
        """How long one read of the stream may block."""
        self.check()
        left = self.remaining_s()
        return STREAM_READ_TIMEOUT_S if left is None else min(left, STREAM_READ_TIMEOUT_S)

    def reconnect_sooner(self, read_s: float) -> bool:
        """Whether a quiet stream would now block too far past the deadline."""
        self.check()
        left = self.remaining_s()
        return left is not None and read_s - left > self.slack_s

    def cap(self, delay_s: float) -> float:
        """A pause that ends by the deadline."""
        left = self.remaining_s()
        return delay_s if left is None else max(0.0, min(delay_s, left))


def sse_events(lines: Iterator[str]) -> Iterator[Event | None]:
    """Parse Server-Sent Events into Events; None for a keep-alive comment."""
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield Event.model_validate_json("\n".join(data))
                data = []
        elif line.startswith(":"):
            yield None
        else:
            field, _, value = line.partition(":")
            if field == "data":
                data.append(value.removeprefix(" "))


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
    raise _ERRORS.get(status, ConductorError)(detail, status=status, code=code, hint=hint)


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


def blueprint_body(blueprint: BlueprintSource) -> dict[str, Any]:
    """A Blueprint as JSON data: a model as written, a mapping as is, a file parsed safely."""
    if isinstance(blueprint, Blueprint):
        return content_of(blueprint)
    if isinstance(blueprint, Mapping):
        return dict(blueprint)
    return _read_blueprint_file(Path(blueprint))


def _read_blueprint_file(path: Path) -> dict[str, Any]:
    """Parse a YAML or JSON Blueprint file as the server would (no tags, aliases bounded)."""
    if not path.is_file():
        raise FileNotFoundError(
            f"no Blueprint file {str(path)!r}: pass a YAML/JSON file path, a dict or a Blueprint"
        )
    try:
        if path.stat().st_size > MAX_BYTES:
            raise InvalidBlueprint(
                [Problem(path="$", code=ErrorCode.VALIDATION_FAILED, message="over 5 MiB")]
            )
        text = path.read_text(encoding="utf-8", errors="replace")
        data = parse_document(text, json_only=path.suffix.lower() == ".json")
    except InvalidBlueprint as exc:
        raise InvalidBlueprintError(
            f"{path} is not a Blueprint file", exc.problems, status=None
        ) from None
    if not isinstance(data, dict):
        problem = Problem(
            path="$", code=ErrorCode.VALIDATION_FAILED, message="not a mapping with id and nodes"
        )
        raise InvalidBlueprintError(f"{path} is not a Blueprint file", [problem], status=None)
    return data


def _execution(execution_id: str) -> str:
    return f"/v1/executions/{quote(execution_id, safe='')}"


def _blueprint(blueprint_id: str) -> str:
    return f"/v1/blueprints/{quote(blueprint_id, safe='')}"


def _params(**values: Any) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}
