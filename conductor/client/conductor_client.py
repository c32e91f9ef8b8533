"""ConductorClient: submit Blueprints, follow and control executions over the HTTP API."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from conductor.api.models import ExecutionAccepted as Submitted
from conductor.api.models import ExecutionPage, ValidationReport
from conductor.api.models import ExecutionView as Execution
from conductor.client.bodies import BlueprintSource, blueprint_body
from conductor.client.errors import (
    ConductorError,
    ExecutionFailed,
    InvalidBlueprintError,
    UnavailableError,
    raise_for_problem,
)
from conductor.client.results import Result
from conductor.client.signals import SignalMethods
from conductor.client.stream import (
    MAX_RETRY_AFTER_S,
    RECONNECT_DELAYS_S,
    Deadline,
    Stream,
    sse_events,
)
from conductor.history_diff import HistoryDiff
from storage.blueprints import BlueprintPage, StoredBlueprint
from storage.events import Event


class ConductorClient(SignalMethods):
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
        breakpoints: Sequence[str] = (),
        priority: int | None = None,
        concurrency_key: str | None = None,
    ) -> Submitted:
        """Submit an inline Blueprint or a stored one's id; the same idempotency_key always
        gives the same execution; `breakpoints` name nodes it pauses before (see step()).
        `priority` 0-9 (9 most urgent); with a `concurrency_key`, at most the Blueprint's
        max_running executions with it run at once (the rest wait in line)."""
        if (blueprint is None) == (blueprint_id is None):
            raise ValueError("give exactly one of blueprint and blueprint_id")
        body: dict[str, Any] = {"inputs": dict(inputs or {})}
        if blueprint is not None:
            body["blueprint"] = blueprint_body(blueprint)
        else:
            body["blueprint_id"] = blueprint_id
        if idempotency_key is not None:
            body["idempotency_key"] = idempotency_key
        if breakpoints:
            body["breakpoints"] = list(breakpoints)
        if priority is not None:
            body["priority"] = priority
        if concurrency_key is not None:
            body["concurrency_key"] = concurrency_key
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
        priority: int | None = None,
        concurrency_key: str | None = None,
    ) -> Result:
        """submit() then wait(); raises ExecutionFailed unless the execution succeeded."""
        submitted = self.submit(
            blueprint,
            blueprint_id=blueprint_id,
            inputs=inputs,
            idempotency_key=idempotency_key,
            priority=priority,
            concurrency_key=concurrency_key,
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

    def replay(
        self,
        execution_id: str,
        *,
        from_node: str | None = None,
        inputs: Mapping[str, Any] | None = None,
    ) -> Submitted:
        """Run a finished execution again from history as a new execution (`replay_of`);
        `from_node` re-runs that node and what depends on it, keeping the other outputs."""
        body = _params(from_node=from_node, inputs=dict(inputs) if inputs is not None else None)
        path = f"{_execution(execution_id)}/replay"
        return Submitted.model_validate(self._json("POST", path, json=body))

    def diff(self, execution_id: str, other_id: str) -> HistoryDiff:
        """Per-node output differences from one recorded execution to another."""
        path = f"{_execution(execution_id)}/diff/{quote(other_id, safe='')}"
        return HistoryDiff.model_validate(self._json("GET", path))

    def step(self, execution_id: str) -> Submitted:
        """Run a paused execution's ready nodes, then pause before the next; ConflictError
        unless paused."""
        return self._control(execution_id, "step")

    def node(self, execution_id: str, node_key: str) -> dict[str, Any]:
        """One node of a live execution: state, parameters, resolved `inputs` (None while it
        waits for `waiting_for`), output, and whether a breakpoint holds before it."""
        path = f"{_execution(execution_id)}/nodes/{quote(node_key, safe='/')}"
        found: dict[str, Any] = self._json("GET", path)
        return found

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
        deadline = Deadline(execution_id, timeout_s)
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

    def _pause(self, failures: int, exc: Exception, deadline: Deadline) -> int:
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

    def _event_stream(self, execution_id: str, after_seq: int, read_s: float) -> Stream:
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
        return Stream(response)

    def _result_of(self, event: Event) -> Result:
        result = event.data.get("result")
        if isinstance(result, dict) and "success" in result:
            return Result.model_validate(result)
        # A large result travels as a blob reference: the API reads it back.
        stored = self.get(event.execution_id).result
        if stored is None:
            raise ConductorError(f"execution {event.execution_id} ended but has no result")
        return Result.model_validate(stored)

    # Schedules (`conductor beat` fires them)

    def add_schedule(
        self,
        name: str,
        blueprint_id: str,
        *,
        every: str | int | None = None,
        cron: str | None = None,
        timezone: str | None = None,
        inputs: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Run a stored Blueprint `every` ("30s", "5m") or on a `cron` expression."""
        body = _params(
            name=name, blueprint_id=blueprint_id, every=every, cron=cron, timezone=timezone,
            inputs=dict(inputs) if inputs is not None else None,
        )  # fmt: skip
        created: dict[str, Any] = self._json("POST", "/v1/schedules", json=body)
        return created

    def schedules(self) -> list[dict[str, Any]]:
        """Every schedule, with its next tick."""
        found: list[dict[str, Any]] = self._json("GET", "/v1/schedules")
        return found

    def schedule(self, name: str) -> dict[str, Any]:
        """One schedule."""
        found: dict[str, Any] = self._json("GET", _schedule(name))
        return found

    def pause_schedule(self, name: str) -> dict[str, Any]:
        """No tick fires until it is resumed."""
        found: dict[str, Any] = self._json("POST", f"{_schedule(name)}/pause")
        return found

    def resume_schedule(self, name: str) -> dict[str, Any]:
        """Fire again from now."""
        found: dict[str, Any] = self._json("POST", f"{_schedule(name)}/resume")
        return found

    def remove_schedule(self, name: str) -> None:
        """Remove a schedule (its executions stay)."""
        self._request("DELETE", _schedule(name))


def _execution(execution_id: str) -> str:
    return f"/v1/executions/{quote(execution_id, safe='')}"


def _blueprint(blueprint_id: str) -> str:
    return f"/v1/blueprints/{quote(blueprint_id, safe='')}"


def _params(**values: Any) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}


def _schedule(name: str) -> str:
    return f"/v1/schedules/{quote(name, safe='')}"
