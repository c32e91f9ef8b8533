"""`http-request` in Blueprints run by a real worker process, against a loopback server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import RunBlueprint
from tests.unit.test_node_http_request import ITEMS, LocalServer, serving


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    """The loopback test server the worker process calls."""
    with serving() as running:
        yield running


def test_get_json_feeds_a_transform(run_blueprint: RunBlueprint, server: LocalServer) -> None:
    result = run_blueprint(
        f"""
id: http-get
name: HTTP GET into transform
nodes:
  - id: fetch
    type: http-request
    parameters: {{method: GET, url: "{server.url("items")}", headers: {{Accept: application/json}}}}
  - id: tens
    type: transform
    parameters: {{transformFunction: "item => item.n * 10"}}
edges:
  - {{source: fetch, target: tens}}
"""
    )
    assert result["status"] == "succeeded", result["error"]
    assert result["data"]["tens"]["result"] == [item["n"] * 10 for item in ITEMS]


def test_post_sends_the_upstream_output(run_blueprint: RunBlueprint, server: LocalServer) -> None:
    key = uuid.uuid4().hex
    result = run_blueprint(
        f"""
id: http-post
name: HTTP POST of an edited record
nodes:
  - id: record
    type: edit-fields
    parameters: {{values: {{name: "{{{{$input.name}}}}", count: 3}}, keepOnlySet: true}}
  - id: send
    type: http-request
    parameters:
      method: POST
      url: "{server.url(f"record/{key}")}"
      body: "{{{{$input}}}}"
      auth: {{type: bearer, token: t0ken}}
edges:
  - {{source: record, target: send}}
""",
        {"name": "Ada"},
    )
    assert result["status"] == "succeeded", result["error"]
    assert server.state.received[key] == {"name": "Ada", "count": 3}
    sent = result["data"]["send"]
    assert sent["status"] == 201
    assert sent["result"] == {"stored": key}


def test_a_404_fails_the_execution(run_blueprint: RunBlueprint, server: LocalServer) -> None:
    result = run_blueprint(
        f"""
id: http-404
name: HTTP 404
nodes:
  - {{id: fetch, type: http-request, parameters: {{url: "{server.url("missing")}"}}}}
"""
    )
    assert result["status"] == "failed"
    assert result["error"]["code"] == "EXECUTION_FAILED"
    assert result["error"]["nodeId"] == "fetch"
    assert "HTTP 404" in result["error"]["message"]
