"""GET /v1/executions/{id}/nodes/{key}/inputs: a node's inputs as the worker resolved them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conductor.embedded import ApiProcess
from tests.e2e.test_api import assert_problem, run, submit, wait_until

pytestmark = pytest.mark.e2e

BIG = "x" * 300_000  # over the default blob threshold (256 KiB): the output goes to a blob
A_FIELDS = {"n": 7, "tag": "a"}


def fields(node_id: str, values: dict[str, Any]) -> dict[str, Any]:
    """An edit-fields node keeping only `values` (its output: `result` and `data`)."""
    return {
        "id": node_id,
        "type": "edit-fields",
        "parameters": {"values": values, "keepOnlySet": True},
    }


def edge(source: str, target: str, handle: str | None, port: str) -> dict[str, Any]:
    """An edge onto `port`, from `source`'s `handle` key (its whole output when None)."""
    found = {"id": f"{source}-{target}-{port}", "source": source, "target": target}
    found["targetHandle"] = port
    if handle is not None:
        found["sourceHandle"] = handle
    return found


def wired_blueprint() -> dict[str, Any]:
    """a and c feed b (two edges into `pair`, a's whole output into `whole`); a's `data` alone
    feeds d; big's large output feeds e; inside group g, x feeds y."""
    group = {
        "id": "g",
        "type": "group",
        "nodes": [
            fields("x", {"inner": True}),
            {"id": "y", "type": "delay", "parameters": {"ms": 0}},
        ],
        "edges": [edge("x", "y", "result", "in")],
    }
    return {
        "id": f"inputs-{uuid.uuid4().hex[:8]}",
        "name": "Inputs",
        "nodes": [
            fields("a", A_FIELDS),
            fields("c", {"n": 9}),
            fields("big", {"text": BIG}),
            *({"id": key, "type": "delay", "parameters": {"ms": 0}} for key in ("b", "d", "e")),
            group,
        ],
        "edges": [
            edge("a", "b", "data", "pair"),
            edge("c", "b", "result", "pair"),
            edge("a", "b", None, "whole"),
            edge("a", "d", "data", "one"),
            edge("big", "e", "result", "text"),
        ],
    }


@pytest.fixture
def http(api: ApiProcess) -> Iterator[httpx.Client]:
    """An httpx client of the session's `conductor api`."""
    with httpx.Client(base_url=api.url, timeout=httpx.Timeout(10, read=20)) as client:
        yield client


def inputs(http: httpx.Client, execution_id: str, key: str) -> Any:
    """The node's resolved inputs (a 200)."""
    response = http.get(f"/v1/executions/{execution_id}/nodes/{key}/inputs")
    assert response.status_code == 200, response.text
    return response.json()


def test_resolved_inputs_of_source_wired_and_nested_nodes(http: httpx.Client) -> None:
    body = {"blueprint": wired_blueprint(), "inputs": {"seed": 3}}
    execution_id, events = run(http, body)
    assert events[-1].event == "execution.succeeded", events[-1]

    # A source node receives the execution's inputs.
    assert inputs(http, execution_id, "a") == {"ports": {"seed": 3}, "input": {"seed": 3}}
    # Two edges into one port: a list in edge order, each its sourceHandle's value; a whole
    # output on a port, with `$input` taking its `result` (a mapping of ports: several ports).
    whole = {"result": A_FIELDS, "data": A_FIELDS}
    wired = inputs(http, execution_id, "b")
    assert wired["ports"] == {"pair": [A_FIELDS, {"n": 9}], "whole": whole}
    assert wired["input"] == {"pair": [A_FIELDS, {"n": 9}], "whole": A_FIELDS}
    # One edge with a sourceHandle: that key's value, and `$input` is it.
    assert inputs(http, execution_id, "d") == {"ports": {"one": A_FIELDS}, "input": A_FIELDS}
    # A value kept in the blob store comes back whole, not as a reference.
    large = inputs(http, execution_id, "e")
    assert large["ports"]["text"] == {"text": BIG} and large["input"] == {"text": BIG}
    # A group's node, by its nested key (keys with a slash).
    nested = inputs(http, execution_id, "g/y")
    assert nested == {"ports": {"in": {"inner": True}}, "input": {"inner": True}}


def test_unknown_is_404_and_an_unfinished_upstream_is_409(http: httpx.Client) -> None:
    missing = str(uuid.uuid4())
    problem = assert_problem(http.get(f"/v1/executions/{missing}/nodes/a/inputs"), 404, "NOT_FOUND")
    assert missing in problem["detail"]

    slow = {
        "id": f"inputs-slow-{uuid.uuid4().hex[:8]}",
        "name": "Slow",
        "nodes": [
            {"id": "slow", "type": "delay", "parameters": {"ms": 20_000}},
            {"id": "after", "type": "delay", "parameters": {"ms": 0}},
        ],
        "edges": [{"id": "e1", "source": "slow", "target": "after"}],
    }
    execution_id = submit(http, {"blueprint": slow})
    try:
        url = f"/v1/executions/{execution_id}/nodes"
        problem = assert_problem(http.get(f"{url}/nope/inputs"), 404, "NOT_FOUND")
        assert "'nope'" in problem["detail"]
        wait_until(lambda: http.get(f"/v1/executions/{execution_id}").json()["status"] == "running")
        problem = assert_problem(http.get(f"{url}/after/inputs"), 409, "CONFLICT")
        assert "'slow'" in problem["detail"] and "not finished" in problem["detail"]
        assert http.get(f"{url}/slow/inputs").json() == {"ports": {}, "input": {}}
    finally:
        assert http.post(f"/v1/executions/{execution_id}/cancel").status_code == 200
