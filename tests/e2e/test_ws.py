"""/v1/ws through a real `conductor api` process, a real client and the session's worker."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from conductor.embedded import ApiProcess, WorkerProcess
from tests.e2e.test_api import TERMINAL, TOKEN, blueprint, chain, delay

pytestmark = pytest.mark.e2e

Json = dict[str, Any]


def ws_url(api: ApiProcess) -> str:
    """The API's /v1/ws address."""
    return api.url.replace("http://", "ws://") + "/v1/ws"


def send(conn: ClientConnection, message: Json) -> None:
    """Send one JSON message."""
    conn.send(json.dumps(message))


def receive(conn: ClientConnection, timeout_s: float = 15) -> Json:
    """The next JSON message."""
    message: Json = json.loads(conn.recv(timeout=timeout_s))
    return message


def reply(conn: ClientConnection, message: Json) -> Json:
    """Send `message` and return the next message that is not an event."""
    send(conn, message)
    while (got := receive(conn))["type"] == "event":
        pass
    return got


def submit(http: httpx.Client, body: Json) -> str:
    """POST /v1/executions; the execution id."""
    response = http.post("/v1/executions", json=body)
    assert response.status_code == 202, response.text
    execution_id: str = response.json()["id"]
    return execution_id


def events_until(
    conn: ClientConnection, seen: dict[str, list[Json]], done: Any, timeout_s: float = 30
) -> None:
    """Collect events per execution into `seen` until `done(seen)`."""
    deadline = time.monotonic() + timeout_s
    while not done(seen):
        message = receive(conn, deadline - time.monotonic())
        assert message["type"] == "event", message
        event = message["event"]
        seen.setdefault(event["execution_id"], []).append(event)


def collect(conn: ClientConnection, seen: dict[str, list[Json]], done: Any) -> None:
    """Collect events per execution until `done(seen)`; other messages must be `subscribed`."""
    deadline = time.monotonic() + 30
    while not done(seen):
        message = receive(conn, deadline - time.monotonic())
        if message["type"] == "event":
            seen.setdefault(message["event"]["execution_id"], []).append(message["event"])
        else:
            assert message["type"] == "subscribed" and message["ref"] == message["execution_id"]


def closed_with(conn: ClientConnection) -> tuple[int, str]:
    """Read until the server closes; its close code and reason."""
    with pytest.raises(ConnectionClosed) as caught:
        while True:
            receive(conn)
    frame = caught.value.rcvd
    assert frame is not None, "closed without a close frame"
    return frame.code, frame.reason


@pytest.fixture(scope="module")
def http(api: ApiProcess) -> Iterator[httpx.Client]:
    """A client of the shared API process."""
    with httpx.Client(base_url=api.url, timeout=15) as client:
        yield client


def test_three_executions_on_one_connection_resume_after_a_drop_with_no_gap_or_repeat(
    api: ApiProcess, http: httpx.Client
) -> None:
    ids = [submit(http, {"blueprint": chain(250, "a", "b", "c", "d")}) for _ in range(3)]
    first: dict[str, list[Json]] = {}
    with connect(ws_url(api)) as conn:
        for execution_id in ids:
            send(conn, {"op": "subscribe", "execution_id": execution_id, "ref": execution_id})
        collect(conn, first, lambda seen: all(len(seen.get(i, [])) >= 3 for i in ids))
    # Dropped mid-run: at least one execution has not ended yet.
    assert any(first[i][-1]["type"] not in TERMINAL for i in ids)

    rest: dict[str, list[Json]] = {}
    with connect(ws_url(api)) as conn:
        for execution_id in ids:
            after = first[execution_id][-1]["seq"]
            message = {"op": "subscribe", "execution_id": execution_id, "after": after}
            send(conn, {**message, "ref": execution_id})
        collect(
            conn,
            rest,
            lambda seen: all((first[i] + seen.get(i, []))[-1]["type"] in TERMINAL for i in ids),
        )

    for execution_id in ids:
        union = first[execution_id] + rest.get(execution_id, [])
        assert [e["seq"] for e in union] == list(range(1, len(union) + 1)), "a gap or a repeat"
        assert union[0]["type"] == "execution.queued"
        assert [e["type"] for e in union if e["type"] in TERMINAL] == ["execution.succeeded"]
        assert sum(e["type"] == "node.succeeded" for e in union) == 4
        # The same objects SSE sends.
        sse = http.get(f"/v1/executions/{execution_id}/events", params={"after": 0})
        sse_ids = [line[4:] for line in sse.text.splitlines() if line.startswith("id: ")]
        assert sse_ids == [str(e["seq"]) for e in union]
        assert [e["id"] for e in union] == [
            json.loads(line[6:])["id"]
            for line in sse.text.splitlines()
            if line.startswith("data: ")
        ]


def test_bad_messages_and_unknown_executions_get_an_error_naming_the_problem(
    api: ApiProcess,
) -> None:
    missing = f"no-such-{uuid.uuid4().hex[:8]}"
    cases: list[tuple[str, str, str]] = [
        ("{not json", "BAD_MESSAGE", "not JSON"),
        ("[1, 2]", "BAD_MESSAGE", "JSON object"),
        ('{"execution_id": "x"}', "BAD_MESSAGE", "op: required"),
        ('{"op": "fly"}', "BAD_MESSAGE", "op: unknown op 'fly'"),
        ('{"op": "subscribe"}', "BAD_MESSAGE", "execution_id: required for subscribe"),
        ('{"op": "subscribe", "execution_id": "x", "after": -1}', "BAD_MESSAGE", "after:"),
        ('{"op": "subscribe", "execution_id": "x", "after": "3"}', "BAD_MESSAGE", "after:"),
        (json.dumps({"op": "subscribe", "execution_id": missing}), "NOT_FOUND", missing),
        (json.dumps({"op": "cancel", "execution_id": missing}), "NOT_FOUND", missing),
        ('{"op": "submit", "inputs": {}}', "BAD_MESSAGE", "exactly one of blueprint"),
        ('{"op": "submit", "blueprint_id": "nope-nope"}', "NOT_FOUND", "'nope-nope'"),
        ('{"op": "submit", "blueprint": {"id": "b", "nodes": 3}}', "VALIDATION_FAILED", "nodes"),
    ]
    with connect(ws_url(api)) as conn:
        for text, code, fragment in cases:
            conn.send(text)
            got = receive(conn)
            assert got["type"] == "error" and got["code"] == code, (text, got)
            assert fragment in got["message"] or fragment in json.dumps(got.get("errors")), got
        # The connection is still usable after every error.
        assert reply(conn, {"op": "unsubscribe", "execution_id": "x"})["type"] == "unsubscribed"


def test_submit_and_cancel_over_the_socket(api: ApiProcess, http: httpx.Client) -> None:
    with connect(ws_url(api)) as conn:
        slow = blueprint([delay("long", 20_000), delay("after", 0)], [("long", "after")])
        submitted = reply(conn, {"op": "submit", "blueprint": slow, "ref": "s1"})
        assert submitted["type"] == "submitted" and submitted["ref"] == "s1", submitted
        execution_id = submitted["execution_id"]
        assert reply(conn, {"op": "subscribe", "execution_id": execution_id})["after"] == 0
        seen: dict[str, list[Json]] = {}
        events_until(
            conn, seen, lambda s: any(e["type"] == "node.started" for e in s.get(execution_id, []))
        )
        send(conn, {"op": "cancel", "execution_id": execution_id})
        replies: list[Json] = []
        while not (seen[execution_id][-1]["type"] in TERMINAL and replies):
            message = receive(conn)
            if message["type"] == "event":
                seen[execution_id].append(message["event"])
            else:
                replies.append(message)
        assert replies == [
            {"type": "control", "op": "cancel", "execution_id": execution_id, "status": "cancelled"}
        ]
        assert seen[execution_id][-1]["type"] == "execution.cancelled"
        again = reply(conn, {"op": "pause", "execution_id": execution_id})
        assert again["code"] == "CONFLICT" and "cancelled" in again["message"], again
    assert http.get(f"/v1/executions/{execution_id}").json()["status"] == "cancelled"


def test_subscribe_all_sees_executions_start_and_end(api: ApiProcess, http: httpx.Client) -> None:
    with connect(ws_url(api)) as conn:
        assert reply(conn, {"op": "subscribe_all"})["type"] == "subscribed"
        execution_id = submit(http, {"blueprint": chain(0, "a")})
        seen: dict[str, list[Json]] = {}
        events_until(
            conn, seen, lambda s: any(e["type"] in TERMINAL for e in s.get(execution_id, []))
        )
    kinds = [e["type"] for e in seen[execution_id]]
    assert kinds[0] == "execution.queued" and kinds[-1] == "execution.succeeded", kinds
    assert all(e["node_id"] is None for e in seen[execution_id]), "node events are left out"


@pytest.fixture(scope="module")
def guarded(api_env: dict[str, str], worker: WorkerProcess) -> Iterator[ApiProcess]:
    """An API with a token, 2 connections at most and 2 subscriptions per connection."""
    env = {
        **api_env,
        "CONDUCTOR_API_TOKEN": TOKEN,
        "CONDUCTOR_WS_MAX_CONNECTIONS": "2",
        "CONDUCTOR_WS_MAX_SUBSCRIPTIONS": "2",
    }
    process = ApiProcess(env).start()
    yield process
    process.stop()


def test_without_the_token_the_socket_is_closed_with_1008(guarded: ApiProcess) -> None:
    for first in ({"op": "subscribe", "execution_id": "x"}, {"op": "auth", "token": "wrong"}):
        with connect(ws_url(guarded)) as conn:
            send(conn, first)
            code, reason = closed_with(conn)
            assert code == 1008 and "unauthorized" in reason, (first, code, reason)
    bearer = {"Authorization": "Bearer wrong"}
    with connect(ws_url(guarded), additional_headers=bearer) as conn:
        send(conn, {"op": "subscribe", "execution_id": "x"})
        assert closed_with(conn)[0] == 1008


def test_the_token_in_a_header_or_a_first_message_and_the_limits_close_with_a_code(
    guarded: ApiProcess, http: httpx.Client
) -> None:
    # Still running while subscribed: a finished execution's follower ends (and frees its
    # place) as soon as its history is sent.
    ids = [submit(http, {"blueprint": chain(4000, "a")}) for _ in range(3)]
    header = {"Authorization": f"Bearer {TOKEN}"}
    with connect(ws_url(guarded), additional_headers=header) as by_header:
        with connect(ws_url(guarded)) as by_message:
            assert reply(by_message, {"op": "auth", "token": TOKEN}) == {"type": "authenticated"}
            with connect(ws_url(guarded), additional_headers=header) as third:
                code, reason = closed_with(third)
                assert code == 1013 and "too many connections (max 2)" in reason
            for execution_id in ids[:2]:
                got = reply(by_message, {"op": "subscribe", "execution_id": execution_id})
                assert got["type"] == "subscribed", got
            send(by_message, {"op": "subscribe", "execution_id": ids[2]})
            code, reason = closed_with(by_message)
            assert code == 1008 and "too many subscriptions (max 2" in reason
        got = reply(by_header, {"op": "subscribe", "execution_id": ids[0]})
        assert got["type"] == "subscribed", got
    # Closed connections free their places.
    deadline = time.monotonic() + 5
    while True:
        with connect(ws_url(guarded), additional_headers=header) as conn:
            try:
                assert reply(conn, {"op": "unsubscribe", "execution_id": "x"})["type"]
                break
            except ConnectionClosed:
                assert time.monotonic() < deadline, "connections were not released"
                time.sleep(0.2)


@pytest.fixture(scope="module")
def impatient(api_env: dict[str, str], worker: WorkerProcess) -> Iterator[ApiProcess]:
    """An API holding one connection at most, closing one idle for a second."""
    env = {**api_env, "CONDUCTOR_WS_MAX_CONNECTIONS": "1", "CONDUCTOR_WS_IDLE_S": "1"}
    process = ApiProcess(env).start()
    yield process
    process.stop()


def test_an_idle_socket_is_closed_and_frees_its_place_but_a_following_one_is_not(
    impatient: ApiProcess, http: httpx.Client
) -> None:
    with connect(ws_url(impatient)) as idle:
        code, reason = closed_with(idle)  # says nothing, follows nothing
        assert code == 1001 and "idle for 1 s with no subscription" in reason
    execution_id = submit(http, {"blueprint": chain(1500, "a", "b")})  # quiet for 1.5 s at a time
    with connect(ws_url(impatient)) as following:  # the idle one's place is free again
        assert reply(following, {"op": "subscribe", "execution_id": execution_id})["type"] == (
            "subscribed"
        )
        while (got := receive(following))["event"]["type"] not in TERMINAL:
            pass
        assert got["event"]["type"] == "execution.succeeded"
