"""`http-request` on a real worker with the default egress policy (issue 15, items 5 and 6):
internal addresses refused in every spelling, an allowed host name reached, and no URL
secret (user info, query values) in the worker's log, the result or the events."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from conductor.dispatch import Dispatcher
from conductor.embedded import RedisServer, WorkerProcess
from conductor.model.loader import load_blueprint_text
from conductor.model.settings import Settings
from conductor.waiting import wait_for_result
from nodes.registry import default_registry
from storage.events import EventType
from tests.unit.test_node_http_request import LocalServer, serving
from workers.app import create_app
from workers.tasks import make_stores


@dataclass(frozen=True)
class Stack:
    """A private Redis and a worker logging at INFO, allowing only the host name localhost."""

    settings: Settings
    log: Path
    run: Callable[[str], dict[str, Any]]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("egress")
    env = {"CONDUCTOR_DATA_DIR": str(base / "data"), "CONDUCTOR_HTTP_ALLOW": "localhost"}
    log = base / "worker.log"
    with RedisServer() as server:
        worker = WorkerProcess(
            server.url, concurrency=1, env=env, name="egress@%h", log_path=log, loglevel="INFO"
        )
        with worker:
            settings = Settings.from_env({**env, "CONDUCTOR_REDIS_URL": server.url})
            stores = make_stores(settings)
            dispatcher = Dispatcher(create_app(settings), stores, default_registry())
            client = redis.Redis.from_url(server.url)

            def run(text: str) -> dict[str, Any]:
                plan = dispatcher.submit(load_blueprint_text(text), {})
                return wait_for_result(client, stores, plan.execution_id, 60)

            yield Stack(settings, log, run)
            client.close()


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with serving() as running:
        yield running


def _fetch(url: str) -> str:
    return f"""
id: egress
name: Egress
nodes:
  - id: fetch
    type: http-request
    parameters: {{url: {json.dumps(url)}, maxRetries: 2, retries: 2}}
"""


def _events(stack: Stack, execution_id: str) -> list[dict[str, Any]]:
    events = make_stores(stack.settings).state.events(execution_id) or []
    return [event.model_dump(mode="json") for event in events]


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "2130706433", "[::ffff:127.0.0.1]", "169.254.169.254", "0.0.0.0"]
)
def test_internal_addresses_are_refused_without_a_retry(
    stack: Stack, server: LocalServer, host: str
) -> None:
    port = server.base.rsplit(":", 1)[1]
    result = stack.run(_fetch(f"http://{host}:{port}/echo"))
    assert result["status"] == "failed", result
    message = result["error"]["message"]
    assert "may not connect to" in message and "CONDUCTOR_HTTP_ALLOW" in message, message
    types = [event["type"] for event in _events(stack, result["id"])]
    assert EventType.NODE_RETRYING.value not in types


def test_secrets_in_the_url_reach_no_log_result_or_event(stack: Stack, server: LocalServer) -> None:
    password, token, path = f"pw{uuid.uuid4().hex}", f"tok{uuid.uuid4().hex}", uuid.uuid4().hex
    port = server.base.rsplit(":", 1)[1]
    result = stack.run(_fetch(f"http://ada:{password}@localhost:{port}/text/{path}?token={token}"))
    assert result["status"] == "succeeded", result  # the allowed host name is reached
    assert result["data"]["fetch"]["url"] == f"http://***@localhost:{port}/text/{path}?token=***"
    masked_line = f"HTTP Request: GET http://***@localhost:{port}/text/{path}?token=***"
    deadline = time.monotonic() + 30
    while masked_line not in stack.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)  # the worker's log is written by another process: wait for the line
    log = stack.log.read_text()
    assert masked_line in log
    for secret in (password, token):
        assert secret not in log
        assert secret not in json.dumps(result)
        assert secret not in json.dumps(_events(stack, result["id"]))


@pytest.mark.parametrize("query", ["{key}", "a=1&{key}", "{key}&b=2"])
def test_a_query_part_without_a_name_is_masked_too(
    stack: Stack, server: LocalServer, query: str
) -> None:
    """`?KEY`, a query part with no `=`, is a value too (an API key in the query alone)."""
    key, path = f"key{uuid.uuid4().hex}", uuid.uuid4().hex
    port = server.base.rsplit(":", 1)[1]
    result = stack.run(_fetch(f"http://localhost:{port}/text/{path}?{query.format(key=key)}"))
    assert result["status"] == "succeeded", result
    masked = query.replace("{key}", "***").replace("=1", "=***").replace("=2", "=***")
    assert result["data"]["fetch"]["url"] == f"http://localhost:{port}/text/{path}?{masked}"
    masked_line = f"HTTP Request: GET http://localhost:{port}/text/{path}?{masked}"
    deadline = time.monotonic() + 30
    while masked_line not in stack.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)  # the worker's log is written by another process: wait for the line
    log = stack.log.read_text()
    assert masked_line in log
    assert key not in log
    assert key not in json.dumps(result)
    assert key not in json.dumps(_events(stack, result["id"]))


DEEP = 100_000  # json.loads raises RecursionError on this many levels


def test_a_response_too_deep_to_parse_is_its_text_without_a_retry(
    stack: Stack, server: LocalServer
) -> None:
    """A JSON body nested too deeply to parse is handed back as text, as a body that is not
    JSON; it was a RecursionError, retried as an unexpected error."""
    port = server.base.rsplit(":", 1)[1]
    result = stack.run(_fetch(f"http://localhost:{port}/deep/{DEEP}"))
    assert result["status"] == "succeeded", result
    assert result["data"]["fetch"]["data"] == "[" * DEEP + "]" * DEEP
    types = [event["type"] for event in _events(stack, result["id"])]
    assert EventType.NODE_RETRYING.value not in types


def test_json_text_too_deep_in_a_parameter_is_a_clear_failure_or_text(stack: Stack) -> None:
    """The same text in parameters read as JSON (given by a variable, so only the worker sees
    it): http-request's headers refuse it as not a JSON object, transform's reduceInitial
    takes it as text; neither is retried."""
    deep = json.dumps("[" * DEEP + "]" * DEEP)
    result = stack.run(f"""
id: deep-text
name: Deep text
variables:
  text: {{type: string, defaultValue: {deep}}}
nodes:
  - id: headers
    type: http-request
    parameters: {{url: "http://localhost:1/", headers: "{{{{$vars.text}}}}", maxRetries: 0}}
""")
    assert result["status"] == "failed", result
    assert result["error"]["code"] == "INVALID_PARAMETERS", result["error"]
    assert "nested too deeply" in result["error"]["message"]
    result = stack.run(f"""
id: deep-initial
name: Deep initial
nodes:
  - id: fold
    type: transform
    parameters:
      transformFunction: "(total, item) => total"
      operation: reduce
      reduceInitial: {deep}
""")
    assert result["status"] == "succeeded", result
    assert result["data"]["fold"]["result"] == "[" * DEEP + "]" * DEEP
    types = [event["type"] for event in _events(stack, result["id"])]
    assert EventType.NODE_RETRYING.value not in types


@pytest.mark.parametrize(
    "url",
    ["ftp://ada:{password}@localhost/x?token={token}", "http://ada:{password}@[::1/?token={token}"],
)
def test_a_refused_url_is_not_quoted_in_the_error(stack: Stack, url: str) -> None:
    """A URL given at run time (a variable) that is not an http(s) URL fails the node with
    INVALID_PARAMETERS; its message quoted the URL, password and token included."""
    password, token = f"pw{uuid.uuid4().hex}", f"tok{uuid.uuid4().hex}"
    given = json.dumps(url.format(password=password, token=token))
    result = stack.run(f"""
id: bad-url
name: Bad URL
variables:
  target: {{type: string, defaultValue: {given}}}
nodes:
  - id: fetch
    type: http-request
    parameters: {{url: "{{{{$vars.target}}}}", maxRetries: 0}}
""")
    assert result["status"] == "failed", result
    assert result["error"]["code"] == "INVALID_PARAMETERS", result["error"]
    assert "url" in result["error"]["message"]
    node_errors = [
        event for event in _events(stack, result["id"]) if event["type"] != "execution.queued"
    ]
    for secret in (password, token):
        assert secret not in json.dumps(result["error"])
        assert secret not in json.dumps(node_errors)
