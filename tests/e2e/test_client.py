"""The Python client against the real `conductor api` and worker, used from its own process."""

from __future__ import annotations

import email.utils
import json
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conductor.client import (
    AuthError,
    ConductorClient,
    ConductorError,
    ConflictError,
    InvalidBlueprintError,
    InvalidRequestError,
    NotFoundError,
    UnavailableError,
    WaitTimeout,
)
from conductor.client.stream import sse_events
from conductor.embedded import ApiProcess, ServiceProcess, free_port
from tests.conftest import REPO

HELLO = REPO / "examples" / "hello.yaml"

# Three delays in a row: long enough to pause, resume and cancel between them.
SLOW = {
    "id": "slow-chain",
    "name": "Slow chain",
    "nodes": [
        {"id": "a", "type": "delay", "parameters": {"ms": 1000}},
        {"id": "b", "type": "delay", "parameters": {"ms": 1000}},
        {"id": "c", "type": "delay", "parameters": {"ms": 1000}},
    ],
    "edges": [{"source": "a", "target": "b"}, {"source": "b", "target": "c"}],
}

INVALID = {
    "id": "broken",
    "name": "Broken",
    "nodes": [
        {"id": "a", "type": "no-such-type"},
        {"id": "b", "type": "delay", "parameters": {"ms": "soon"}},
    ],
    "edges": [{"source": "b", "target": "missing"}],
}

# Every script starts with this: the client only, the API's address as argv[1].
PRELUDE = """\
import json
import sys

from conductor import client as api
from conductor.client import ConductorClient

URL = sys.argv[1]


def emit(value):
    print(json.dumps(value))
"""

RunClient = Callable[..., Any]


@pytest.fixture
def run_client(api: ApiProcess, tmp_path: Path) -> RunClient:
    """Run a client script in a separate process; return the JSON it printed last."""

    def run(body: str, *args: str) -> Any:
        script = tmp_path / f"client_{uuid.uuid4().hex[:8]}.py"
        script.write_text(PRELUDE + "\n" + textwrap.dedent(body))
        done = subprocess.run(
            [sys.executable, str(script), api.url, *args],
            capture_output=True, text=True, timeout=90, cwd=tmp_path, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])

    return run


def test_submit_and_wait_returns_the_result(run_client: RunClient) -> None:
    out = run_client(
        """
        with ConductorClient(URL) as client:
            submitted = client.submit(sys.argv[2], inputs={"name": "Ada"})
            result = client.wait(submitted.id, timeout_s=30)
            execution = client.get(submitted.id)
        emit({
            "submitted": submitted.model_dump(),
            "result": result.model_dump(mode="json"),
            "execution": execution.model_dump(mode="json"),
        })
        """,
        str(HELLO),
    )
    assert out["submitted"]["status"] == "queued"
    result = out["result"]
    assert result["id"] == out["submitted"]["id"]
    assert result["success"] is True and result["status"] == "succeeded"
    assert result["error"] is None
    summary = result["data"]["summary"]["result"]
    assert summary["greeting"] == "HELLO, ADA!" and summary["letters"] == 31
    assert set(result["executed_nodes"]) == {"greet", "shout", "words", "letters", "summary"}
    assert {entry["node_id"] for entry in result["trace"]} == set(result["executed_nodes"])
    execution = out["execution"]
    assert execution["status"] == "succeeded" and execution["blueprint_id"] == "hello-conductor"
    assert {node["status"] for node in execution["nodes"]} == {"succeeded"}
    assert execution["result"]["data"] == result["data"]


def test_run_raises_execution_failed_carrying_the_result(run_client: RunClient) -> None:
    out = run_client(
        """
        failing = {
            "id": "fails",
            "name": "Fails",
            "nodes": [{
                "id": "boom",
                "type": "transform",
                "parameters": {"transformFunction": "item => { throw new Error('boom') }"},
            }],
        }
        with ConductorClient(URL) as client:
            try:
                client.run(failing, timeout_s=30)
            except api.ExecutionFailed as exc:
                emit({"message": str(exc), "result": exc.result.model_dump(mode="json")})
        """
    )
    assert out["result"]["success"] is False and out["result"]["status"] == "failed"
    assert out["result"]["error"]["node_id"] == "boom"
    assert "boom" in out["message"] and "failed in node 'boom'" in out["message"]


def test_events_stream_in_seq_order(run_client: RunClient) -> None:
    out = run_client(
        """
        with ConductorClient(URL) as client:
            submitted = client.submit(sys.argv[2], inputs={"name": "Seq"})
            every = [e.model_dump(mode="json") for e in client.events(submitted.id)]
            tail = [e.model_dump(mode="json") for e in client.events(submitted.id, after_seq=3)]
        emit({"id": submitted.id, "every": every, "tail": tail})
        """,
        str(HELLO),
    )
    every = out["every"]
    assert [e["seq"] for e in every] == list(range(1, len(every) + 1))
    assert {e["execution_id"] for e in every} == {out["id"]}
    assert every[0]["type"] == "execution.queued" and every[1]["type"] == "execution.started"
    assert every[-1]["type"] == "execution.succeeded"
    assert every[-1]["data"]["result"]["success"] is True
    started = [e["node_id"] for e in every if e["type"] == "node.started"]
    assert sorted(started) == ["greet", "letters", "shout", "summary", "words"]
    assert out["tail"] == every[3:]


def test_an_invalid_blueprint_raises_with_every_path(run_client: RunClient, tmp_path: Path) -> None:
    unsafe = tmp_path / "unsafe.yaml"
    unsafe.write_text("id: x\nname: !!python/object:os.system x\nnodes: []\n")
    out = run_client(
        """
        invalid = json.loads(sys.argv[2])
        found = {}
        with ConductorClient(URL) as client:
            for name, call in {
                "submit": lambda: client.submit(invalid),
                "create": lambda: client.create_blueprint(invalid),
                "file": lambda: client.submit(sys.argv[3]),
            }.items():
                try:
                    call()
                except api.InvalidBlueprintError as exc:
                    found[name] = {
                        "paths": exc.paths,
                        "codes": [p.code for p in exc.errors],
                        "status": exc.status,
                        "message": str(exc),
                    }
            report = client.validate_blueprint(invalid)
        emit({**found, "report": report.model_dump()})
        """,
        json.dumps(INVALID),
        str(unsafe),
    )
    assert out["submit"]["paths"] == [
        "blueprint.nodes[0].type",
        "blueprint.nodes[1].parameters.ms",
        "blueprint.edges[0].target",
    ]
    assert out["submit"]["codes"] == [
        "NODE_TYPE_NOT_FOUND",
        "INVALID_PARAMETERS",
        "VALIDATION_FAILED",
    ]
    assert out["submit"]["status"] == 422
    for path in out["submit"]["paths"]:
        assert path in out["submit"]["message"]
    assert "validate_blueprint()" in out["submit"]["message"]
    assert out["create"]["paths"] == ["nodes[0].type", "nodes[1].parameters.ms", "edges[0].target"]
    # An unsafe file is refused by the client itself, before any request.
    assert out["file"]["status"] is None and out["file"]["paths"] == ["$"]
    assert "tags are not allowed" in out["file"]["message"]
    assert out["report"]["valid"] is False
    assert [e["path"] for e in out["report"]["errors"]] == out["create"]["paths"]


def test_unknown_ids_raise_not_found(run_client: RunClient) -> None:
    out = run_client(
        """
        found = {}
        with ConductorClient(URL) as client:
            for name, call in {
                "get": lambda: client.get("no-such-execution"),
                "events": lambda: list(client.events("no-such-execution")),
                "wait": lambda: client.wait("no-such-execution", timeout_s=5),
                "cancel": lambda: client.cancel("no-such-execution"),
                "submit": lambda: client.submit(blueprint_id="no-such-blueprint"),
                "get_blueprint": lambda: client.get_blueprint("no-such-blueprint"),
                "delete_blueprint": lambda: client.delete_blueprint("no-such-blueprint"),
            }.items():
                try:
                    call()
                except api.NotFoundError as exc:
                    found[name] = {"status": exc.status, "message": str(exc)}
        emit(found)
        """
    )
    assert set(out) == {
        "get", "events", "wait", "cancel", "submit", "get_blueprint", "delete_blueprint"
    }  # fmt: skip
    assert {item["status"] for item in out.values()} == {404}
    assert "'no-such-execution'" in out["get"]["message"]
    assert "check the id" in out["get"]["message"]
    assert "'no-such-blueprint'" in out["submit"]["message"]


def test_the_same_idempotency_key_gives_the_same_execution(run_client: RunClient) -> None:
    out = run_client(
        """
        key = sys.argv[3]
        with ConductorClient(URL) as client:
            first = client.submit(sys.argv[2], inputs={"name": "Once"}, idempotency_key=key)
            again = client.submit(sys.argv[2], inputs={"name": "Once"}, idempotency_key=key)
            other = client.submit(sys.argv[2], idempotency_key=key + "-other")
            result = client.wait(first.id, timeout_s=30)
            repeat = client.submit(sys.argv[2], inputs={"name": "Once"}, idempotency_key=key)
            client.wait(other.id, timeout_s=30)
        emit({
            "ids": [first.id, again.id, other.id, repeat.id],
            "repeat_status": repeat.status,
            "result_id": result.id,
        })
        """,
        str(HELLO),
        f"client-test-{uuid.uuid4()}",
    )
    first, again, other, repeat = out["ids"]
    assert first == again == repeat == out["result_id"]
    assert other != first
    assert out["repeat_status"] == "succeeded"


def test_a_stored_blueprint_is_created_replaced_and_submitted_by_id(
    run_client: RunClient,
) -> None:
    out = run_client(
        """
        blueprint_id = sys.argv[2]
        def greeter(greeting):
            return {
                "id": blueprint_id,
                "name": "Stored greeter",
                "version": "2.0.0",
                "variables": {"who": {"type": "string", "defaultValue": "nobody"}},
                "nodes": [{
                    "id": "greet",
                    "type": "edit-fields",
                    "parameters": {
                        "values": {"text": greeting + ", {{$vars.who}}"}, "keepOnlySet": True
                    },
                }],
            }
        with ConductorClient(URL) as client:
            created = client.create_blueprint(greeter("Hello"))
            try:
                client.create_blueprint(greeter("Hello"))
                conflict = None
            except api.ConflictError as exc:
                conflict = str(exc)
            replaced = client.replace_blueprint(blueprint_id, greeter("Howdy"))
            first = client.get_blueprint(blueprint_id, revision=1)
            listed = [item.id for item in client.list_blueprints(limit=1000).items]
            submitted = client.submit(blueprint_id=blueprint_id, inputs={"who": "Grace"})
            result = client.wait(submitted.id, timeout_s=30)
            execution = client.get(submitted.id)
            client.delete_blueprint(blueprint_id)
            try:
                client.get_blueprint(blueprint_id)
                gone = False
            except api.NotFoundError:
                gone = True
        emit({
            "revisions": [created.revision, replaced.revision, first.revision],
            "first_text": first.content()["nodes"][0]["parameters"]["values"]["text"],
            "conflict": conflict,
            "listed": blueprint_id in listed,
            "data": result.data,
            "blueprint": [execution.blueprint_id, execution.blueprint_version],
            "gone": gone,
        })
        """,
        f"stored-{uuid.uuid4().hex[:8]}",
    )
    assert out["revisions"] == [1, 2, 1]
    assert out["first_text"] == "Hello, {{$vars.who}}"
    assert out["conflict"] is not None and "PUT replaces it" in out["conflict"]
    assert out["listed"] is True
    assert out["data"]["greet"]["result"] == {"text": "Howdy, Grace"}
    assert out["blueprint"][1] == "2.0.0+r2"
    assert out["gone"] is True


def test_cancel_pause_and_resume_a_slow_execution(run_client: RunClient) -> None:
    out = run_client(
        """
        import time

        def until(events, kind, node_id):
            for event in events:
                if event.type == kind and event.node_id == node_id:
                    return event
            raise AssertionError(f"no {kind} of {node_id}")

        def refused(call):
            try:
                call()
            except api.ConflictError as exc:
                return str(exc)
            return None

        with ConductorClient(URL) as client:
            execution_id = client.submit(json.loads(sys.argv[2])).id
            events = client.events(execution_id)
            until(events, "node.started", "a")
            paused = client.pause(execution_id)
            until(events, "node.succeeded", "a")
            time.sleep(1.5)  # b would have started by now if pause did not hold it
            while_paused = client.get(execution_id)
            pause_again = refused(lambda: client.pause(execution_id))
            resumed = client.resume(execution_id)
            until(events, "node.started", "b")
            cancelled = client.cancel(execution_id)
            result = client.wait(execution_id, timeout_s=30)
            types = [e.type.value for e in client.events(execution_id)]
            cancel_again = refused(lambda: client.cancel(execution_id))
            resume_after = refused(lambda: client.resume(execution_id))
        emit({
            "statuses": [paused.status, resumed.status, cancelled.status],
            "while_paused": {n.node_id: n.status for n in while_paused.nodes},
            "paused_status": while_paused.status,
            "pause_again": pause_again,
            "result": result.model_dump(mode="json"),
            "types": types,
            "cancel_again": cancel_again,
            "resume_after": resume_after,
        })
        """,
        json.dumps(SLOW),
    )
    assert out["statuses"] == ["paused", "running", "cancelled"]
    assert out["paused_status"] == "paused"
    assert out["while_paused"]["a"] == "succeeded"
    assert out["while_paused"]["b"] == "pending"
    assert "cannot pause an execution that is paused" in out["pause_again"]
    result = out["result"]
    assert result["status"] == "cancelled" and result["success"] is False
    assert result["error"]["code"] == "CANCELLED"
    types = out["types"]
    for kind in ("execution.paused", "execution.resumed", "execution.cancelled"):
        assert kind in types
    assert types.index("execution.paused") < types.index("execution.resumed")
    assert types[-1] == "execution.cancelled"
    assert "cannot cancel an execution that is cancelled" in out["cancel_again"]
    assert out["resume_after"] is not None


@pytest.fixture(scope="module")
def recorder(api_env: dict[str, str]) -> Iterator[ServiceProcess]:
    """`conductor recorder` for this module only: the session-wide `recorder_process` would go
    on draining the durable event stream that tests/e2e/test_events.py reads later."""
    process = ServiceProcess(["recorder", "--name", "e2e-client-recorder"], api_env).start()
    yield process
    process.stop()


def test_list_executions_pages_what_the_recorder_stored(
    run_client: RunClient, recorder: ServiceProcess
) -> None:
    out = run_client(
        """
        import time

        blueprint = {
            "id": sys.argv[2],
            "name": "Listed",
            "nodes": [{"id": "a", "type": "delay", "parameters": {"ms": 0}}],
        }
        with ConductorClient(URL) as client:
            ids = [client.run(blueprint, timeout_s=30).id for _ in range(3)]
            deadline = time.monotonic() + 20  # the recorder moves events in batches
            while time.monotonic() < deadline:
                page = client.list_executions(blueprint_id=sys.argv[2], limit=2)
                rest = client.list_executions(blueprint_id=sys.argv[2], cursor=page.next_cursor)
                listed = [e.id for e in page.items + rest.items]
                # Both pages read after the recorder stored all three (not one before, one after).
                complete = len(page.items) == 2 and len(listed) == 3
                if complete and {e.status for e in page.items + rest.items} == {"succeeded"}:
                    break
                time.sleep(0.2)
            failed = client.list_executions(status="failed", blueprint_id=sys.argv[2])
        emit({"ids": ids, "listed": listed, "first_page": len(page.items), "failed": len(failed.items)})
        """,
        f"listed-{uuid.uuid4().hex[:8]}",
    )
    assert sorted(out["listed"]) == sorted(out["ids"])
    assert out["listed"] == list(reversed(out["ids"]))  # newest first
    assert out["first_page"] == 2
    assert out["failed"] == 0


# In the test process: the wait deadline, reconnection, and the token.


def test_wait_gives_up_after_its_timeout_and_leaves_the_execution_running(
    api: ApiProcess,
) -> None:
    slow = {**SLOW, "nodes": [{"id": "a", "type": "delay", "parameters": {"ms": 6000}}]}
    slow["edges"] = []
    with ConductorClient(api.url) as client:
        execution_id = client.submit(slow).id
        started = time.monotonic()
        with pytest.raises(WaitTimeout) as caught:
            client.wait(execution_id, timeout_s=2.5)  # delay's progress events keep coming
        elapsed = time.monotonic() - started
        assert 2.5 <= elapsed < 4.0  # at most the slack (0.5 s) late, plus scheduling
        assert caught.value.execution_id == execution_id
        assert f"cancel({execution_id!r})" in str(caught.value)
        assert isinstance(caught.value, ConductorError)
        assert client.get(execution_id).status == "running"
        client.cancel(execution_id)
        assert client.wait(execution_id, timeout_s=10).status == "cancelled"


class DroppingProxy:
    """A TCP proxy in front of the API that cuts its first connection once `marker` went by."""

    def __init__(self, target_port: int, marker: bytes) -> None:
        self.target_port, self.marker = target_port, marker
        self.requests: list[bytes] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        """http://127.0.0.1:<port>"""
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:  # closed
                return
            first = not self.requests
            self.requests.append(b"")
            threading.Thread(
                target=self._serve, args=(conn, len(self.requests) - 1, first), daemon=True
            ).start()

    def _serve(self, conn: socket.socket, index: int, cut: bool) -> None:
        with conn, socket.create_connection(("127.0.0.1", self.target_port)) as upstream:
            self.requests[index] = conn.recv(65536)  # a GET: its head fits in one read
            upstream.sendall(self.requests[index])
            seen = b""
            while data := upstream.recv(65536):
                conn.sendall(data)
                seen += data
                if cut and self.marker in seen:
                    conn.shutdown(socket.SHUT_RDWR)
                    return

    def close(self) -> None:
        """Stop accepting."""
        self.listener.close()


@pytest.fixture
def proxy(api: ApiProcess) -> Iterator[DroppingProxy]:
    """A proxy that drops the first event stream after the first node started."""
    found = DroppingProxy(api.port, b"event: node.started")
    yield found
    found.close()


def _last_event_id(request: bytes) -> str | None:
    for line in request.decode().split("\r\n"):
        name, _, value = line.partition(":")
        if name.lower() == "last-event-id":
            return value.strip()
    return None


def test_events_resume_with_last_event_id_after_the_connection_drops(
    api: ApiProcess, proxy: DroppingProxy
) -> None:
    with ConductorClient(api.url) as direct, ConductorClient(proxy.url) as client:
        execution_id = direct.submit(SLOW).id
        seqs = [event.seq for event in client.events(execution_id)]
    assert seqs == list(range(1, len(seqs) + 1))  # no gap, no repeat
    assert len(proxy.requests) >= 2
    assert _last_event_id(proxy.requests[0]) is None
    resumed_after = _last_event_id(proxy.requests[1])
    assert resumed_after is not None and int(resumed_after) >= 2


def test_wait_survives_a_dropped_connection(api: ApiProcess, proxy: DroppingProxy) -> None:
    with ConductorClient(api.url) as direct, ConductorClient(proxy.url) as client:
        execution_id = direct.submit(SLOW).id
        result = client.wait(execution_id, timeout_s=30)
    assert result.success and result.executed_nodes == ["a", "b", "c"]
    assert len(proxy.requests) >= 2 and _last_event_id(proxy.requests[1]) is not None


@pytest.fixture(scope="module")
def token_api(api_env: dict[str, str]) -> Iterator[ApiProcess]:
    """A second `conductor api` that requires a bearer token."""
    process = ApiProcess({**api_env, "CONDUCTOR_API_TOKEN": "s3cret"}).start()
    yield process
    process.stop()


def test_a_token_is_sent_and_a_missing_one_raises_auth_error(token_api: ApiProcess) -> None:
    for token in (None, "wrong"):
        with (
            ConductorClient(token_api.url, token=token) as client,
            pytest.raises(AuthError) as caught,
        ):
            client.list_blueprints()
        assert caught.value.status == 401
        assert "token=" in str(caught.value) and "CONDUCTOR_API_TOKEN" in str(caught.value)
    with ConductorClient(token_api.url, token="s3cret") as client:
        result = client.run(SLOW | {"nodes": SLOW["nodes"][:1], "edges": []}, timeout_s=30)
    assert result.success


# Error mapping alone: canned answers, no server.


def _answering(
    status: int, body: Any = None, headers: dict[str, str] | None = None
) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        if isinstance(body, str):
            return httpx.Response(status, text=body, headers=headers)
        return httpx.Response(
            status,
            json=body,
            headers={"content-type": "application/problem+json", **(headers or {})},
        )

    return httpx.MockTransport(handle)


def _problem(status: int, code: str, detail: str, **more: Any) -> dict[str, Any]:
    return {"type": "about:blank", "status": status, "code": code, "detail": detail, **more}


@pytest.mark.parametrize(
    ("status", "kind", "hint"),
    [
        (400, InvalidRequestError, "change the request"),
        (401, AuthError, "pass token="),
        (403, AuthError, "pass token="),
        (404, NotFoundError, "check the id"),
        (409, ConflictError, "read the current state"),
        (413, InvalidRequestError, "change the request"),
        (500, ConductorError, "server's log"),
        (501, ConductorError, "upgrade Conductor"),
        (503, UnavailableError, "try again in 5 s"),
    ],
)
def test_each_status_maps_to_its_error(status: int, kind: type[ConductorError], hint: str) -> None:
    transport = _answering(
        status, _problem(status, "VALIDATION_FAILED", "it went wrong"), {"Retry-After": "5"}
    )
    with (
        ConductorClient("http://conductor.test", transport=transport) as client,
        pytest.raises(ConductorError) as caught,
    ):
        client.get("e1")
    assert type(caught.value) is kind
    assert caught.value.status == status and caught.value.code == "VALIDATION_FAILED"
    assert caught.value.detail == "it went wrong"
    message = str(caught.value)
    assert message.startswith(f"it went wrong ({status} VALIDATION_FAILED): ") and hint in message


def test_a_422_carries_every_problem_with_its_path() -> None:
    errors = [
        {"path": "blueprint.nodes[0].type", "code": "NODE_TYPE_NOT_FOUND", "message": "unknown"},
        {"path": "blueprint.edges[1]", "code": "SOMETHING_NEWER", "message": "odd edge"},
    ]
    transport = _answering(422, _problem(422, "VALIDATION_FAILED", "invalid", errors=errors))
    with (
        ConductorClient("http://conductor.test", transport=transport) as client,
        pytest.raises(InvalidBlueprintError) as caught,
    ):
        client.submit({"id": "x", "name": "x", "nodes": []})
    assert isinstance(caught.value, InvalidRequestError)
    assert caught.value.paths == ["blueprint.nodes[0].type", "blueprint.edges[1]"]
    assert caught.value.errors[0].code == "NODE_TYPE_NOT_FOUND"
    assert caught.value.errors[1].message == "odd edge"  # an unknown code keeps the message
    assert "\n  blueprint.nodes[0].type: unknown [NODE_TYPE_NOT_FOUND]" in str(caught.value)


def test_retry_after_as_an_http_date_and_a_page_that_is_not_json() -> None:
    later = email.utils.formatdate(time.time() + 60, usegmt=True)
    transport = _answering(503, "<html>maintenance</html>", {"Retry-After": later})
    with (
        ConductorClient("http://conductor.test", transport=transport) as client,
        pytest.raises(UnavailableError) as caught,
    ):
        client.get("e1")
    assert caught.value.retry_after is not None and 50 < caught.value.retry_after <= 60
    assert "maintenance" in str(caught.value) and caught.value.code is None


def test_no_answer_at_all_is_unavailable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with (
        ConductorClient("http://conductor.test", transport=httpx.MockTransport(refuse)) as client,
        pytest.raises(UnavailableError) as caught,
    ):
        client.get("e1")
    assert caught.value.retry_after is None
    assert "cannot reach Conductor at http://conductor.test" in str(caught.value)
    assert "`conductor api` runs" in str(caught.value)


def test_the_token_goes_in_the_authorization_header() -> None:
    seen: list[str | None] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(200, json={"items": [], "next_cursor": None})

    with ConductorClient(
        "http://conductor.test/", token="t0k", transport=httpx.MockTransport(record)
    ) as client:
        client.list_blueprints()
    assert seen == ["Bearer t0k"]


def test_submit_needs_exactly_one_blueprint() -> None:
    with ConductorClient(f"http://127.0.0.1:{free_port()}") as client:
        with pytest.raises(ValueError, match="exactly one"):
            client.submit()
        with pytest.raises(ValueError, match="exactly one"):
            client.submit({"id": "x"}, blueprint_id="x")
        with pytest.raises(FileNotFoundError, match="no Blueprint file"):
            client.submit("no/such/file.yaml")


def test_server_sent_events_are_parsed_and_a_cut_event_is_dropped() -> None:
    event = {"id": "e", "execution_id": "x", "seq": 1, "type": "execution.queued", "ts": 1.0}
    text = json.dumps(event)
    lines = [
        ": keep-alive", "",
        "id: 1", "event: execution.queued", f"data: {text[:10]}", f"data:{text[10:]}", "",
        "id: 2", "data: {\"id\": ",  # the connection dropped here
    ]  # fmt: skip
    parsed = list(sse_events(iter(lines)))
    assert parsed[0] is None
    assert len(parsed) == 2 and parsed[1] is not None and parsed[1].seq == 1
