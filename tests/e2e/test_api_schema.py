"""Property-based requests from /openapi.json (schemathesis) against the real `conductor api`.

schemathesis' own pytest loader (`schemathesis.pytest.from_fixture`) fails on this pytest
(`'Function' object has no attribute '_nodeid'`), so each operation runs as a Hypothesis test
built from `APIOperation.as_strategy()`. Bounded: few, derandomized examples per operation, a
deadline per request, and only operations that are safe to hammer (PUT and DELETE of stored
Blueprints are left out; generated bodies are not valid Blueprints, so nothing is queued).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck
from schemathesis import APIOperation, Case, CheckFunction, Response
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.schemas import OpenApiSchema

from conductor.embedded import ApiProcess

SAFE = [
    ("POST", "/v1/executions"),
    ("GET", "/v1/executions"),
    ("GET", "/v1/executions/{execution_id}"),
    ("GET", "/v1/executions/{execution_id}/events"),  # unknown ids: a 404, it never blocks
    ("POST", "/v1/executions/{execution_id}/{command}"),
    ("POST", "/v1/executions/{execution_id}/signals/{name}"),  # unknown ids: a 404
    ("POST", "/v1/executions/{execution_id}/replay"),  # unknown ids: a 404
    ("GET", "/v1/executions/{execution_id}/diff/{other_id}"),
    ("GET", "/v1/executions/{execution_id}/nodes/{node_key}/output"),
    ("GET", "/v1/executions/{execution_id}/nodes/{node_key}/inputs"),
    ("GET", "/v1/executions/{execution_id}/nodes/{node_key}"),
    ("POST", "/v1/blueprints"),
    ("GET", "/v1/blueprints"),
    ("POST", "/v1/blueprints/validate"),
    ("GET", "/v1/blueprints/{blueprint_id}"),
    ("GET", "/v1/nodes"),
    ("GET", "/v1/nodes/{node_type}"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("POST", "/v1/schedules"),
    ("GET", "/v1/schedules"),
    ("GET", "/v1/schedules/{name}"),
    ("POST", "/v1/schedules/{name}/pause"),
    ("POST", "/v1/schedules/{name}/resume"),
    ("POST", "/v1/hooks/{name}"),  # unsigned: a 401 or 404
]
LEFT_OUT = [
    ("PUT", "/v1/blueprints/{blueprint_id}"),
    ("DELETE", "/v1/blueprints/{blueprint_id}"),
    ("DELETE", "/v1/schedules/{name}"),
]

SETTINGS = hypothesis.settings(
    max_examples=15,
    deadline=timedelta(seconds=5),
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
Operation = APIOperation[Any, Any, Any, Any]
AnyCase = Case[Any]
Probe = Callable[[AnyCase, Response], None]


@pytest.fixture(scope="module")
def api_schema(api: ApiProcess) -> OpenApiSchema:
    """The served /openapi.json, loaded by schemathesis."""
    return schemathesis.openapi.from_url(f"{api.url}/openapi.json")


def operations(schema: OpenApiSchema) -> Iterator[Operation]:
    """The safe operations of the schema."""
    for method, path in SAFE:
        yield schema[path][method]


def explore(operation: Operation, probe: Probe) -> None:
    """Send the operation's generated cases and hand each response to `probe`."""

    @hypothesis.given(case=operation.as_strategy())
    @SETTINGS
    def send(case: AnyCase) -> None:
        probe(case, case.call(timeout=10))

    send()


def failures_of(schema: OpenApiSchema, checks: list[CheckFunction]) -> list[str]:
    """Distinct failures of `checks` over every safe operation, one line each."""
    found: set[str] = set()
    for operation in operations(schema):

        def probe(case: AnyCase, response: Response) -> None:
            try:
                case.validate_response(response, checks=checks)
            except FailureGroup as group:
                found.update(_line(case, response, f) for f in group.exceptions)
            except Failure as failure:
                found.add(_line(case, response, failure))

        explore(operation, probe)
    return sorted(found)


def _line(case: AnyCase, response: Response, failure: Failure) -> str:
    media = response.headers.get("content-type", ["-"])[0]
    return f"{case.operation.label} -> {response.status_code} {media}: {failure.title}"


def test_the_schema_lists_every_operation(api_schema: OpenApiSchema) -> None:
    results = list(api_schema.get_all_operations())
    listed = {(r.ok().method.upper(), r.ok().path) for r in results if isinstance(r, Ok)}
    assert len(listed) == len(results)  # every operation in the schema loads
    assert listed == set(SAFE) | set(LEFT_OUT)  # a new operation needs a place in SAFE


@pytest.mark.parametrize(("method", "path"), SAFE, ids=[f"{m} {p}" for m, p in SAFE])
def test_no_server_error_and_bodies_match_the_schema(
    api_schema: OpenApiSchema, method: str, path: str
) -> None:
    def probe(case: AnyCase, response: Response) -> None:
        assert response.status_code < 500, (case.as_curl_command(), response.text)
        case.validate_response(response, checks=[response_schema_conformance])

    explore(api_schema[path][method], probe)


def test_every_status_and_media_type_is_documented(api_schema: OpenApiSchema) -> None:
    failures = failures_of(api_schema, [status_code_conformance, content_type_conformance])
    assert not failures, "\n".join(failures)


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,  # the failures found; a crash of the test itself is not expected
    reason="schema gap: request bodies are looser in /openapi.json than the API: "
    "ExecutionRequest (conductor/api/models.py:10) allows {} although exactly one of blueprint "
    "and blueprint_id is required, and POST /v1/blueprints and /v1/blueprints/validate take "
    "`dict[str, Any]` (conductor/api/blueprints.py:36,65) instead of the Blueprint schema; "
    "`cursor` (any string) is 400 unless the API handed it out, `Last-Event-ID` 400 unless a number",
)
def test_schema_valid_requests_are_accepted(api_schema: OpenApiSchema) -> None:
    failures = failures_of(api_schema, [positive_data_acceptance])
    assert not failures, "\n".join(failures)
