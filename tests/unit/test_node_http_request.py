"""`http-request` against a real HTTP server on loopback (no other network)."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import ValidationError

from conductor.model.loader import load_blueprint_text
from conductor.validation import validate
from nodes.base import NodeContext, NodeEnvironment
from nodes.errors import NodeError, NodeTimeout
from nodes.http_request import HttpRequestNode, HttpRequestParameters
from nodes.registry import default_registry

ITEMS = [{"n": 1}, {"n": 2}, {"n": 3}]
CHUNK = b"x" * 65_536


@dataclass
class ServerState:
    """What the test server saw: calls per path, and the bodies `record` stored."""

    calls: Counter[str] = field(default_factory=Counter)
    received: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, path: str) -> int:
        """Count one call to `path`; return how many there have been."""
        with self.lock:
            self.calls[path] += 1
            return self.calls[path]


class _Server(ThreadingHTTPServer):
    """A threading HTTP server that carries its state and keeps quiet about aborted clients."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = ServerState()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up early (timeouts, size limits) are expected here."""


class _Handler(BaseHTTPRequestHandler):
    """Routes by the first path segment; the rest is a key or an argument."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base's name)
        """Quiet."""

    def do_GET(self) -> None:
        """Route."""
        self._route()

    def do_POST(self) -> None:
        """Route."""
        self._route()

    def do_PUT(self) -> None:
        """Route."""
        self._route()

    def do_DELETE(self) -> None:
        """Route."""
        self._route()

    def do_PATCH(self) -> None:
        """Route."""
        self._route()

    def do_HEAD(self) -> None:
        """Route."""
        self._route()

    def do_OPTIONS(self) -> None:
        """Route."""
        self._route()

    @property
    def state(self) -> ServerState:
        """The server's shared state."""
        return cast(_Server, self.server).state

    def _route(self) -> None:
        path = urlsplit(self.path).path
        name, _, arg = path.strip("/").partition("/")
        calls = self.state.count(path)
        route = getattr(self, f"_route_{name}", None)
        if route is None:
            self._reply(404, b"no route here", "text/plain")
        else:
            route(arg, calls)

    def _read_body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _reply(
        self, status: int, body: bytes, content_type: str, headers: Mapping[str, str] = {}
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, value: Any) -> None:
        self._reply(status, json.dumps(value).encode(), "application/json")

    def _route_echo(self, arg: str, calls: int) -> None:
        body = self._read_body().decode()
        self._json(
            200,
            {
                "method": self.command,
                "path": urlsplit(self.path).path,
                "query": parse_qs(urlsplit(self.path).query),
                "headers": {name.lower(): value for name, value in self.headers.items()},
                "body": body,
            },
        )

    def _route_deep(self, arg: str, calls: int) -> None:
        depth = int(arg or "100000")
        self._reply(200, b"[" * depth + b"]" * depth, "application/json")

    def _route_items(self, arg: str, calls: int) -> None:
        self._json(200, ITEMS)

    def _route_text(self, arg: str, calls: int) -> None:
        self._reply(200, "héllo, world".encode(), "text/plain; charset=utf-8", {"X-Kind": "text"})

    def _route_binary(self, arg: str, calls: int) -> None:
        self._reply(200, bytes(range(8)), "application/octet-stream")

    def _route_missing(self, arg: str, calls: int) -> None:
        self._reply(404, b"the thing\nyou asked for is not here", "text/plain")

    def _route_ratelimit(self, arg: str, calls: int) -> None:
        self._reply(429, b"slow down", "text/plain", {"Retry-After": "1"})

    def _route_flaky(self, arg: str, calls: int) -> None:
        if calls == 1:
            self._reply(500, b"try again", "text/plain")
        else:
            self._json(200, {"calls": calls})

    def _route_down(self, arg: str, calls: int) -> None:
        self._reply(503, b"service unavailable, call " + str(calls).encode(), "text/plain")

    def _route_slow(self, arg: str, calls: int) -> None:
        time.sleep(float(arg))
        self._json(200, {"slept": float(arg)})

    def _route_large(self, arg: str, calls: int) -> None:
        self._reply(200, b"x" * int(arg), "application/octet-stream")

    def _route_stream(self, arg: str, calls: int) -> None:
        # HTTP/1.0 with no Content-Length: the body ends when the connection closes.
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        for _ in range(int(arg) // len(CHUNK)):
            self.wfile.write(CHUNK)

    def _route_close(self, arg: str, calls: int) -> None:
        self.close_connection = True  # hang up without a status line

    def _route_redirect(self, arg: str, calls: int) -> None:
        self._reply(302, b"", "text/plain", {"Location": "/text"})

    def _route_away(self, arg: str, calls: int) -> None:
        self._reply(302, b"", "text/plain", {"Location": f"http://{arg}/echo"})

    def _route_record(self, arg: str, calls: int) -> None:
        self.state.received[arg] = json.loads(self._read_body())
        self._json(201, {"stored": arg})


@dataclass(frozen=True)
class LocalServer:
    """A running test server: its base URL and state."""

    base: str
    state: ServerState

    def url(self, path: str) -> str:
        """The absolute URL of `path`."""
        return f"{self.base}/{path.lstrip('/')}"


@contextmanager
def serving() -> Iterator[LocalServer]:
    """Run the test server on 127.0.0.1 on a free port, in a thread."""
    server = _Server()
    thread = threading.Thread(target=server.serve_forever, name="http-test-server", daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield LocalServer(f"http://{host!s}:{port}", server.state)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    """The test server, for this module."""
    with serving() as running:
        yield running


def unique(prefix: str) -> str:
    """A path no other test uses, so call counts start at zero."""
    return f"{prefix}/{uuid.uuid4().hex}"


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# The loopback test server is reached as the egress policy allows it: CONDUCTOR_HTTP_ALLOW.
LOOPBACK_ALLOWED = NodeEnvironment(http_allow=("127.0.0.1",))


def request(
    url: str,
    *,
    deadline_s: float = 5.0,
    environment: NodeEnvironment = LOOPBACK_ALLOWED,
    **parameters: Any,
) -> Mapping[str, Any]:
    """Validate the parameters (fast retries unless given) and run the node once."""
    params = HttpRequestParameters.model_validate({"url": url, "retryDelay": 100, **parameters})
    context = NodeContext(
        execution_id="exec-1",
        node_id="http",
        inputs={},
        data=None,
        deadline=time.monotonic() + deadline_s,
        environment=environment,
    )
    return HttpRequestNode().run(params, context)


def failure(url: str, **parameters: Any) -> NodeError:
    """Run the node, expecting a NodeError; return it."""
    with pytest.raises(NodeError) as caught:
        request(url, **parameters)
    return caught.value


# --- requests as the server sees them ---------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_every_method_reaches_the_server(server: LocalServer, method: str) -> None:
    output = request(server.url("echo"), method=method)
    assert output["status"] == 200
    assert output["result"]["method"] == method


def test_head_returns_status_and_headers_without_a_body(server: LocalServer) -> None:
    output = request(server.url("text"), method="HEAD")
    assert output["status"] == 200
    assert output["result"] == ""
    assert output["headers"]["x-kind"] == "text"


def test_the_method_may_be_lower_case() -> None:
    assert HttpRequestParameters(url="http://127.0.0.1/", method="post").method == "POST"  # type: ignore[arg-type]


def test_an_unknown_method_is_rejected() -> None:
    with pytest.raises(ValidationError) as caught:
        HttpRequestParameters.model_validate({"url": "http://127.0.0.1/", "method": "BREW"})
    assert caught.value.errors()[0]["loc"] == ("method",)


def test_headers_arrive(server: LocalServer) -> None:
    output = request(server.url("echo"), headers={"X-Trace": "abc", "Accept": "application/json"})
    headers = output["result"]["headers"]
    assert headers["x-trace"] == "abc"
    assert headers["accept"] == "application/json"


def test_params_are_appended_to_the_query(server: LocalServer) -> None:
    output = request(server.url("echo?a=1"), params={"b": "two", "c": [3, 4], "d": True})
    assert output["result"]["query"] == {"a": ["1"], "b": ["two"], "c": ["3", "4"], "d": ["true"]}
    # The output's URL carries the query's names, never its values (they may be secrets).
    assert output["url"] == server.url("echo?a=***&b=***&c=***&c=***&d=***")


def test_a_json_body_is_sent_as_json(server: LocalServer) -> None:
    body = {"name": "Ada", "tags": ["x", "ÿ"], "n": 1.5, "ok": None}
    output = request(server.url("echo"), method="POST", body=body)
    echoed = output["result"]
    assert echoed["headers"]["content-type"] == "application/json"
    assert json.loads(echoed["body"]) == body


@pytest.mark.parametrize("body", [[1, 2, 3], 42, True])
def test_any_json_value_that_is_not_a_string_is_sent_as_json(
    server: LocalServer, body: Any
) -> None:
    echoed = request(server.url("echo"), method="PUT", body=body)["result"]
    assert json.loads(echoed["body"]) == body


def test_a_string_body_is_sent_as_text(server: LocalServer) -> None:
    echoed = request(server.url("echo"), method="PATCH", body="plain café")["result"]
    assert echoed["headers"]["content-type"] == "text/plain; charset=utf-8"
    assert echoed["body"] == "plain café"


def test_content_type_sets_the_body_media_type(server: LocalServer) -> None:
    xml = "<a>1</a>"
    echoed = request(server.url("echo"), method="POST", body=xml, contentType="application/xml")
    assert echoed["result"]["headers"]["content-type"] == "application/xml"
    assert echoed["result"]["body"] == xml


def test_a_content_type_header_is_kept(server: LocalServer) -> None:
    headers = {"content-type": "application/vnd.api+json"}
    echoed = request(server.url("echo"), method="POST", body={"a": 1}, headers=headers)
    assert echoed["result"]["headers"]["content-type"] == "application/vnd.api+json"


def test_get_sends_no_body_as_atomiton_does(server: LocalServer) -> None:
    echoed = request(server.url("echo"), method="GET", body={"ignored": True})["result"]
    assert echoed["body"] == ""
    assert "content-type" not in echoed["headers"]


def test_bearer_auth_arrives(server: LocalServer) -> None:
    auth = {"type": "bearer", "token": "s3cret"}
    echoed = request(server.url("echo"), auth=auth)["result"]
    assert echoed["headers"]["authorization"] == "Bearer s3cret"


def test_basic_auth_arrives(server: LocalServer) -> None:
    auth = {"type": "basic", "username": "ada", "password": "pä:ss"}
    echoed = request(server.url("echo"), auth=auth)["result"]
    scheme, _, token = echoed["headers"]["authorization"].partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(token).decode() == "ada:pä:ss"


def test_auth_wins_over_an_authorization_header(server: LocalServer) -> None:
    headers = {"Authorization": "Token old"}
    auth = {"type": "bearer", "token": "new"}
    echoed = request(server.url("echo"), headers=headers, auth=auth)["result"]
    assert echoed["headers"]["authorization"] == "Bearer new"


@pytest.mark.parametrize(
    ("auth", "missing"),
    [({"type": "bearer"}, "token"), ({"type": "basic", "password": "p"}, "username")],
)
def test_auth_without_its_credentials_is_rejected(auth: dict[str, str], missing: str) -> None:
    with pytest.raises(ValidationError) as caught:
        HttpRequestParameters.model_validate({"url": "http://127.0.0.1/", "auth": auth})
    error = caught.value.errors()[0]
    assert error["loc"] == ("auth",)
    assert missing in error["msg"]


# --- responses -------------------------------------------------------------------------------


def test_output_has_atomitons_fields(server: LocalServer) -> None:
    output = request(server.url("items"))
    assert output["result"] == output["data"] == ITEMS
    assert output["status"] == 200
    assert output["statusText"] == "OK"
    assert output["ok"] is output["success"] is True
    assert output["headers"]["content-type"] == "application/json"
    assert output["url"] == server.url("items")
    assert output["duration"] == output["duration_ms"] >= 0
    json.dumps(output)  # the output must travel as JSON


def test_a_text_response_is_text(server: LocalServer) -> None:
    assert request(server.url("text"))["result"] == "héllo, world"


def test_a_binary_response_is_base64(server: LocalServer) -> None:
    assert base64.b64decode(request(server.url("binary"))["result"]) == bytes(range(8))


def test_redirects_are_followed_by_default(server: LocalServer) -> None:
    output = request(server.url("redirect"))
    assert output["result"] == "héllo, world"
    assert output["finalUrl"] == server.url("text")
    assert output["url"] == server.url("redirect")  # Atomiton's: the URL asked for


def test_redirects_may_be_returned_instead(server: LocalServer) -> None:
    output = request(server.url("redirect"), followRedirects=False)
    assert output["status"] == 302
    assert output["ok"] is False
    assert output["headers"]["location"] == "/text"


# --- errors ----------------------------------------------------------------------------------


def test_a_4xx_fails_once_with_status_and_body_snippet(server: LocalServer) -> None:
    path = unique("missing")
    error = failure(server.url(f"{path}?token=do-not-log"))
    assert error.code == "EXECUTION_FAILED"
    assert error.retryable is False
    assert "HTTP 404 Not Found" in str(error)
    assert "the thing you asked for is not here" in str(error)
    assert "do-not-log" not in str(error)
    assert server.state.calls[f"/{path}"] == 1


def test_a_4xx_is_returned_when_fail_on_error_is_off(server: LocalServer) -> None:
    output = request(server.url("missing"), failOnError=False)
    assert output["status"] == 404
    assert output["ok"] is False
    assert output["result"] == "the thing\nyou asked for is not here"


def test_429_is_a_rate_limit_error_not_retried_in_the_node(server: LocalServer) -> None:
    path = unique("ratelimit")
    error = failure(server.url(path))
    assert error.code == "RATE_LIMIT_EXCEEDED"
    assert error.retryable is True  # the node's base `retries` may try again later
    assert server.state.calls[f"/{path}"] == 1


def test_a_5xx_is_retried_then_succeeds(server: LocalServer) -> None:
    path = unique("flaky")
    output = request(server.url(path))
    assert output["result"] == {"calls": 2}
    assert server.state.calls[f"/{path}"] == 2


def test_a_5xx_that_persists_fails_after_max_retries(server: LocalServer) -> None:
    path = unique("down")
    started = time.monotonic()
    error = failure(server.url(path), maxRetries=2)
    assert server.state.calls[f"/{path}"] == 3
    assert time.monotonic() - started >= 0.3  # backoff 0.1 s then 0.2 s
    assert error.code == "EXECUTION_FAILED"
    assert error.retryable is True
    assert "HTTP 503" in str(error)
    assert "call 3" in str(error)


def test_max_retries_zero_sends_once(server: LocalServer) -> None:
    path = unique("down")
    failure(server.url(path), maxRetries=0)
    assert server.state.calls[f"/{path}"] == 1


def test_a_persistent_5xx_is_returned_when_fail_on_error_is_off(server: LocalServer) -> None:
    path = unique("down")
    output = request(server.url(path), maxRetries=1, failOnError=False)
    assert output["status"] == 503
    assert output["result"] == "service unavailable, call 2"


def test_backoff_never_sleeps_past_the_deadline(server: LocalServer) -> None:
    path = unique("down")
    started = time.monotonic()
    with pytest.raises(NodeError):
        request(server.url(path), deadline_s=2.5, maxRetries=5, retryDelay=1000)
    assert time.monotonic() - started < 2.5
    assert server.state.calls[f"/{path}"] == 2  # 1 s backoff fits; the next 2 s one does not


def test_a_slow_server_times_out_at_the_deadline(server: LocalServer) -> None:
    started = time.monotonic()
    with pytest.raises(NodeTimeout) as caught:
        request(server.url("slow/1.5"), deadline_s=0.4, timeout=400)
    elapsed = time.monotonic() - started
    assert caught.value.code == "TIMEOUT"
    assert "400 ms" in str(caught.value)
    assert 0.3 < elapsed < 1.2


def test_connection_refused_is_a_transport_error() -> None:
    url = f"http://127.0.0.1:{closed_port()}/"
    error = failure(url, maxRetries=1)
    assert error.code == "TRANSPORT_ERROR"
    assert error.retryable is True
    assert "after 2 attempt(s)" in str(error)
    assert "ConnectError" in str(error)


def test_a_connection_closed_without_a_response_is_retried_then_a_transport_error(
    server: LocalServer,
) -> None:
    path = unique("close")
    error = failure(server.url(path), maxRetries=2)
    assert error.code == "TRANSPORT_ERROR"
    assert server.state.calls[f"/{path}"] == 3


def test_a_declared_body_over_the_limit_is_refused_unread(server: LocalServer) -> None:
    error = failure(server.url("large/5000000"), maxResponseBytes=1_000_000)
    assert error.code == "EXECUTION_FAILED"
    assert error.retryable is False
    assert "maxResponseBytes (1000000 bytes)" in str(error)
    assert "Content-Length is 5000000" in str(error)


def test_an_undeclared_body_over_the_limit_is_refused_while_streaming(server: LocalServer) -> None:
    error = failure(server.url(f"stream/{len(CHUNK) * 200}"), maxResponseBytes=len(CHUNK) * 4)
    assert "maxResponseBytes" in str(error)
    assert "kept coming" in str(error)


def test_a_body_within_the_limit_is_read(server: LocalServer) -> None:
    output = request(server.url(f"stream/{len(CHUNK) * 4}"), maxResponseBytes=len(CHUNK) * 4)
    assert len(output["result"]) == len(CHUNK) * 4


def test_the_default_limit_is_ten_mebibytes() -> None:
    assert HttpRequestParameters(url="http://127.0.0.1/").maxResponseBytes == 10 * 1024 * 1024


# --- parameters ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["ftp://example.com/file", "file:///etc/passwd", "not a url", "http://", "/relative"]
)
def test_a_url_that_is_not_http_is_rejected_naming_url(url: str) -> None:
    with pytest.raises(ValidationError) as caught:
        HttpRequestParameters.model_validate({"url": url})
    error = caught.value.errors()[0]
    assert error["loc"] == ("url",)
    assert "http or https" in error["msg"]


def test_url_is_required() -> None:
    with pytest.raises(ValidationError) as caught:
        HttpRequestParameters.model_validate({})
    assert caught.value.errors()[0]["loc"] == ("url",)


def test_defaults_follow_atomiton() -> None:
    params = HttpRequestParameters(url="https://api.example.com")
    assert params.method == "GET"
    assert params.headers == {}
    assert params.followRedirects is True
    assert params.validateSSL is True
    assert params.retryDelay == 1000
    assert params.maxRetries == 2
    assert params.failOnError is True


def test_in_node_retries_are_distinct_from_the_base_retries() -> None:
    params = HttpRequestParameters(url="https://api.example.com", retries=3, maxRetries=0)
    assert (params.retries, params.maxRetries) == (3, 0)


def test_the_registry_holds_http_request() -> None:
    assert default_registry().get("http-request") is HttpRequestNode


def test_a_blueprint_with_an_ftp_url_is_rejected_at_its_path() -> None:
    text = (
        "id: b\nname: B\nnodes:\n  - {id: f, type: http-request, parameters: {url: 'ftp://x/y'}}\n"
    )
    problems = validate(load_blueprint_text(text), default_registry())
    assert [problem.path for problem in problems] == ["nodes[0].parameters.url"]


def test_a_templated_url_is_checked_when_the_node_runs() -> None:
    text = "id: b\nname: B\nnodes:\n  - {id: f, type: http-request, parameters: {url: '{{$input.url}}'}}\n"
    assert validate(load_blueprint_text(text), default_registry()) == []
