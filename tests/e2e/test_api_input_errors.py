"""The HTTP API on bodies a parser chokes on (huge numbers, NaN, deep nesting, non-UTF-8):
a 400 that says where, not a bare "error parsing the body"; warnings for what a Blueprint
holds that Conductor ignores; problem codes that say what happened, listed in OpenAPI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conductor.embedded import ApiProcess, WorkerProcess
from tests.e2e.test_api import assert_problem

JSON = {"content-type": "application/json"}


@pytest.fixture
def http(api: ApiProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.url, timeout=httpx.Timeout(10, read=20)) as client:
        yield client


def small(**parameters: Any) -> dict[str, Any]:
    node = {"id": "wait", "type": "delay", "parameters": {"ms": 1, **parameters}}
    return {"id": "input-errors", "name": "Input errors", "nodes": [node]}


def post_raw(http: httpx.Client, path: str, raw: bytes) -> httpx.Response:
    return http.post(path, content=raw, headers=JSON)


def test_a_5000_digit_number_is_refused_naming_its_path(http: httpx.Client) -> None:
    text = json.dumps({"blueprint": small(), "inputs": {"n": 1}})
    raw = text.replace('"n": 1', '"n": ' + "9" * 5000).encode()
    for path in ("/v1/executions", "/v1/blueprints/validate"):
        problem = assert_problem(post_raw(http, path, raw), 400, "BAD_REQUEST")
        (error,) = problem["errors"]
        assert error["path"] == "inputs.n" and "5000 digits" in error["message"]


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused_naming_their_path(http: httpx.Client, constant: str) -> None:
    raw = json.dumps({"blueprint": small(ms=1)}).replace('"ms": 1', f'"ms": {constant}')
    problem = assert_problem(post_raw(http, "/v1/executions", raw.encode()), 400, "BAD_REQUEST")
    assert problem["errors"][0]["path"] == "blueprint.nodes[0].parameters.ms"


def test_json_nested_200000_deep_is_refused_saying_where(http: httpx.Client) -> None:
    raw = b'{"blueprint": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    problem = assert_problem(post_raw(http, "/v1/executions", raw), 400, "BAD_REQUEST")
    assert "nesting is deeper than 100 levels (at line 1, column " in problem["detail"]
    assert http.get("/healthz").status_code == 200


def test_non_utf8_is_refused_with_the_byte_offset(http: httpx.Client) -> None:
    raw = b'{"blueprint_id": "caf\xe9"}'
    problem = assert_problem(post_raw(http, "/v1/executions", raw), 400, "BAD_REQUEST")
    assert "byte 0xe9 at offset 21" in problem["detail"]


def test_unknown_fields_and_parameters_come_back_as_warnings(
    http: httpx.Client, worker: WorkerProcess
) -> None:
    body = small(msx=5)
    body["nodes"][0]["colour"] = "red"
    accepted = http.post("/v1/executions", json={"blueprint": body})
    assert accepted.status_code == 202, accepted.text
    warned = {w["path"]: w["message"] for w in accepted.json()["warnings"]}
    assert warned == {
        "blueprint.nodes[0].colour": "unknown node field, ignored",
        "blueprint.nodes[0].parameters.msx": "unknown parameter of delay, ignored; "
        "did you mean 'ms'?",
    }
    report = http.post("/v1/blueprints/validate", json=body).json()
    assert report["valid"] is True
    assert {w["path"] for w in report["warnings"]} == {
        "nodes[0].colour",
        "nodes[0].parameters.msx",
    }
    clean = http.post("/v1/executions", json={"blueprint": small()})
    assert clean.json()["warnings"] == []


def test_a_strict_api_refuses_what_it_would_ignore(api_env: dict[str, str]) -> None:
    process = ApiProcess({**api_env, "CONDUCTOR_STRICT_PARAMETERS": "1"}).start()
    try:
        with httpx.Client(base_url=process.url, timeout=15) as http:
            response = http.post("/v1/executions", json={"blueprint": small(msx=5)})
            problem = assert_problem(response, 422, "INVALID_PARAMETERS")
            assert problem["errors"][0]["path"] == "blueprint.nodes[0].parameters.msx"
    finally:
        process.stop()


def test_openapi_lists_every_problem_code(http: httpx.Client) -> None:
    spec = http.get("/openapi.json").json()
    schema = spec["paths"]["/v1/executions"]["post"]["responses"]["404"]["content"]
    codes = schema["application/problem+json"]["schema"]["properties"]["code"]["enum"]
    for code in ("UNAUTHORIZED", "NOT_FOUND", "CONFLICT", "BAD_REQUEST", "VALIDATION_FAILED"):
        assert code in codes
