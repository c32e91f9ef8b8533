"""The HTTP API as other services use it: a real `conductor api` process, a real worker, httpx."""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from conductor.embedded import ApiProcess, RedisServer, ServiceProcess, WorkerProcess, free_port
from storage import keys
from tests.e2e.fault_stack import wait_consumed

PROBLEM_JSON = "application/problem+json"
TERMINAL = frozenset({"execution.succeeded", "execution.failed", "execution.cancelled"})
TOKEN = "s3cret-token"

Json = dict[str, Any]


# ---- Blueprints --------------------------------------------------------------------------------


def blueprint(nodes: list[Json], edges: Iterable[tuple[str, str]] = (), **fields: Any) -> Json:
    """An Atomiton Blueprint (JSON form) with a fresh id."""
    return {
        "id": f"api-{uuid.uuid4().hex[:12]}",
        "name": "API test",
        "nodes": nodes,
        "edges": [{"id": f"e{i}", "source": s, "target": t} for i, (s, t) in enumerate(edges)],
        **fields,
    }


def delay(node_id: str, ms: int) -> Json:
    """A `delay` node."""
    return {"id": node_id, "type": "delay", "parameters": {"ms": ms}}


def chain(ms: int, *node_ids: str, **fields: Any) -> Json:
    """delay nodes in a line: a -> b -> c ..."""
    return blueprint([delay(n, ms) for n in node_ids], pairwise(node_ids), **fields)


def greeting(**fields: Any) -> Json:
    """edit-fields -> transform -> delay 0: a quick Blueprint with a known result."""
    return blueprint(
        [
            {
                "id": "make",
                "type": "edit-fields",
                "name": "Make",
                "parameters": {"values": {"n": 20, "who": "{{$vars.who}}"}, "keepOnlySet": True},
                "position": {"x": 10, "y": 20},
            },
            {
                "id": "double",
                "type": "transform",
                "parameters": {"transformFunction": "x => x.n * 2"},
            },
            delay("sink", 0),
        ],
        [("make", "double"), ("double", "sink")],
        variables={"who": {"type": "string", "defaultValue": "world"}},
        **fields,
    )


# ---- Server-Sent Events, parsed by hand --------------------------------------------------------


@dataclass(frozen=True)
class SseEvent:
    """One dispatched SSE event: its `id:`, `event:` and the JSON of its `data:` lines."""

    id: str | None
    event: str
    data: Json

    @property
    def seq(self) -> int:
        """The event's seq (the SSE id)."""
        assert self.id is not None and self.id.isdigit(), self.id
        return int(self.id)


def parse_sse(lines: Iterable[str]) -> Iterator[SseEvent]:
    """SSE events from a line stream (comments skipped, multi-line data joined)."""
    fields: dict[str, list[str]] = {}
    for line in lines:
        if not line:
            if "data" in fields:
                yield SseEvent(
                    id=fields.get("id", [None])[-1],
                    event=fields.get("event", ["message"])[-1],
                    data=json.loads("\n".join(fields["data"])),
                )
            fields = {}
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        fields.setdefault(name, []).append(value.removeprefix(" "))


def follow(
    http: httpx.Client,
    execution_id: str,
    *,
    count: int | None = None,
    headers: dict[str, str] | None = None,
    params: dict[str, Any] | None = None,
) -> list[SseEvent]:
    """Read the event stream until it ends (or `count` events, then hang up)."""
    events: list[SseEvent] = []
    url = f"/v1/executions/{execution_id}/events"
    with http.stream("GET", url, headers=headers, params=params) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for event in parse_sse(response.iter_lines()):
            events.append(event)
            if count is not None and len(events) == count:
                break
    return events


class EventFeed:
    """An SSE subscription read on its own thread, so a test can act on events as they come
    and wait for them with a timeout."""

    def __init__(self, base_url: str, execution_id: str) -> None:
        self.url = f"{base_url}/v1/executions/{execution_id}/events"
        self.events: queue.Queue[SseEvent | BaseException | None] = queue.Queue()
        self.seen: list[SseEvent] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            with httpx.stream("GET", self.url, timeout=httpx.Timeout(10, read=30)) as response:
                for event in parse_sse(response.iter_lines()):
                    self.events.put(event)
        except BaseException as exc:  # handed to the test thread, which raises it
            self.events.put(exc)
        finally:
            self.events.put(None)

    def next(self, timeout_s: float = 15) -> SseEvent | None:
        """The next event; None when the stream ended; queue.Empty after `timeout_s`."""
        item = self.events.get(timeout=timeout_s)
        if isinstance(item, BaseException):
            raise item
        if item is not None:
            self.seen.append(item)
        return item

    def until(self, predicate: Callable[[SseEvent], bool], timeout_s: float = 15) -> SseEvent:
        """Read up to and including the first event that matches."""
        deadline = time.monotonic() + timeout_s
        while (event := self.next(max(0.0, deadline - time.monotonic()))) is not None:
            if predicate(event):
                return event
        raise AssertionError(f"stream ended first: {[e.event for e in self.seen]}")

    def rest(self) -> list[SseEvent]:
        """Read to the end of the stream; the events read by this call."""
        start = len(self.seen)
        while self.next() is not None:
            pass
        self.thread.join(timeout=5)
        return self.seen[start:]


def node_event(kind: str, node_id: str) -> Callable[[SseEvent], bool]:
    """Matches `kind` for `node_id`."""
    return lambda e: e.event == kind and e.data["node_id"] == node_id


def assert_contiguous(events: list[SseEvent]) -> None:
    """Seqs 1..N, each once, in order; every id is the seq; event names match the data."""
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    for event in events:
        assert event.data["seq"] == event.seq and event.data["type"] == event.event


# ---- HTTP helpers ------------------------------------------------------------------------------


@pytest.fixture
def http(api: ApiProcess) -> Iterator[httpx.Client]:
    """An httpx client of the session's `conductor api`."""
    with httpx.Client(base_url=api.url, timeout=httpx.Timeout(10, read=20)) as client:
        yield client


def submit(http: httpx.Client, body: Json) -> str:
    """POST /v1/executions; the new execution's id."""
    response = http.post("/v1/executions", json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def run(http: httpx.Client, body: Json) -> tuple[str, list[SseEvent]]:
    """Submit and follow to the end: the id and every event."""
    execution_id = submit(http, body)
    return execution_id, follow(http, execution_id)


def assert_problem(response: httpx.Response, status: int, code: str | None = None) -> Json:
    """An application/problem+json error with a contract `code`; its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    problem: Json = response.json()
    assert problem["status"] == status and problem["title"] and problem["detail"]
    assert problem["code"] == (code or problem["code"]) and problem["code"], problem
    return problem


def meta_keys(client: redis.Redis) -> set[bytes]:
    """Every execution's meta key in Redis."""
    return set(client.scan_iter(match=keys.meta("*"), count=1000))


def wait_until(condition: Callable[[], bool], timeout_s: float = 20, every_s: float = 0.1) -> None:
    """Poll `condition` (for state no event announces) until true, at most `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(every_s)


# ---- 1. submit and follow ----------------------------------------------------------------------


def test_submit_inline_blueprint_and_follow_its_events_to_the_result(http: httpx.Client) -> None:
    response = http.post("/v1/executions", json={"blueprint": greeting(), "inputs": {"x": 1}})
    assert response.status_code == 202
    accepted = response.json()
    assert set(accepted) == {"id", "status", "warnings"} and accepted["warnings"] == []
    assert accepted["status"] in {"queued", "running"}
    execution_id = accepted["id"]

    events = follow(http, execution_id)
    assert_contiguous(events)
    assert events[0].event == "execution.queued" and events[1].event == "execution.started"
    assert [e.event for e in events if e.event in TERMINAL] == ["execution.succeeded"]
    assert events[-1].event == "execution.succeeded"
    assert {e.data["execution_id"] for e in events} == {execution_id}
    assert len({e.data["id"] for e in events}) == len(events)
    for node in ("make", "double", "sink"):
        kinds = [e.event for e in events if e.data["node_id"] == node]
        assert kinds == ["node.started", "node.succeeded"], (node, kinds)
    result = events[-1].data["data"]["result"]
    assert result["id"] == execution_id and result["success"] is True
    assert result["data"] == {"sink": {"result": 40, "waited_ms": 0}}

    view = http.get(f"/v1/executions/{execution_id}").json()
    assert view["id"] == execution_id and view["status"] == "succeeded"
    assert view["result"] == result and view["error"] is None
    assert view["created_at"] <= view["started_at"] <= view["finished_at"]
    assert {n["node_id"] for n in view["nodes"]} == {"make", "double", "sink"}
    for node in view["nodes"]:
        assert node["status"] == "succeeded" and node["attempts"] == 1 and node["worker"]
        assert node["started_at"] <= node["finished_at"] and node["duration_ms"] >= 0


# ---- 2. reconnecting ---------------------------------------------------------------------------


def test_reconnect_mid_stream_with_last_event_id_has_no_gap_and_no_repeat(
    http: httpx.Client,
) -> None:
    execution_id = submit(http, {"blueprint": chain(300, "a", "b", "c", "d")})
    first = follow(http, execution_id, count=3)
    assert first[-1].data["type"] == "node.started"  # the stream is still live here
    second = follow(http, execution_id, count=3, headers={"Last-Event-ID": first[-1].id or ""})
    assert http.get(f"/v1/executions/{execution_id}").json()["status"] == "running"
    rest = follow(http, execution_id, headers={"Last-Event-ID": second[-1].id or ""})

    union = first + second + rest
    assert_contiguous(union)
    assert union[-1].event == "execution.succeeded"
    assert sum(e.event == "node.started" for e in union) == 4


def test_a_finished_execution_replays_its_history_from_any_point(http: httpx.Client) -> None:
    execution_id, events = run(http, {"blueprint": greeting()})
    assert_contiguous(events)
    assert follow(http, execution_id) == events
    for k in (1, len(events) // 2, len(events) - 1):
        by_header = follow(http, execution_id, headers={"Last-Event-ID": str(k)})
        by_query = follow(http, execution_id, params={"after": k})
        assert by_header == by_query == events[k:]


def test_reconnecting_after_the_terminal_event_ends_at_once(http: httpx.Client) -> None:
    execution_id, events = run(http, {"blueprint": chain(0, "a")})
    with httpx.Client(base_url=str(http.base_url), timeout=httpx.Timeout(5, read=3)) as quick:
        assert follow(quick, execution_id, headers={"Last-Event-ID": events[-1].id or ""}) == []


def test_last_event_id_that_is_not_a_seq_is_a_problem(http: httpx.Client) -> None:
    execution_id, _ = run(http, {"blueprint": chain(0, "a")})
    url = f"/v1/executions/{execution_id}/events"
    assert_problem(http.get(url, headers={"Last-Event-ID": "abc"}), 400, "BAD_REQUEST")
    assert_problem(http.get(url, params={"after": -1}), 422, "VALIDATION_FAILED")


# ---- 3. idempotency ----------------------------------------------------------------------------


def test_one_idempotency_key_gives_one_execution_under_concurrency(
    api: ApiProcess, http: httpx.Client, redis_client: redis.Redis
) -> None:
    body = {"blueprint": greeting(), "idempotency_key": f"order-{uuid.uuid4()}"}
    before = meta_keys(redis_client)
    barrier = threading.Barrier(10)

    def post(_: int) -> httpx.Response:
        with httpx.Client(base_url=api.url, timeout=15) as client:
            barrier.wait(timeout=10)
            return client.post("/v1/executions", json=body)

    with ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(pool.map(post, range(10)))
    assert [r.status_code for r in responses] == [202] * 10
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 1
    execution_id = ids.pop()
    assert meta_keys(redis_client) - before == {keys.meta(execution_id).encode()}

    events = follow(http, execution_id)
    assert [e.event for e in events].count("execution.queued") == 1
    assert [e.event for e in events].count("node.started") == 3
    again = http.post("/v1/executions", json=body)
    assert again.status_code == 202
    assert again.json() == {"id": execution_id, "status": "succeeded", "warnings": []}
    other = submit(http, {**body, "idempotency_key": f"order-{uuid.uuid4()}"})
    assert other != execution_id
    assert follow(http, other)[-1].event == "execution.succeeded"


# ---- 4. errors ---------------------------------------------------------------------------------


def test_an_invalid_blueprint_is_refused_with_every_problem_and_its_path(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    invalid = blueprint(
        [
            {"id": "a", "type": "delay", "parameters": {"ms": -5}},
            {"id": "b", "type": "no-such-type"},
            delay("c", 0),
            delay("d", 0),
            delay("e", 0),
        ],
        [("c", "d"), ("d", "e"), ("e", "c"), ("a", "ghost")],
    )
    before = meta_keys(redis_client)
    problem = assert_problem(
        http.post("/v1/executions", json={"blueprint": invalid}), 422, "VALIDATION_FAILED"
    )
    by_path = {error["path"]: error for error in problem["errors"]}
    assert by_path["blueprint.nodes[0].parameters.ms"]["code"] == "INVALID_PARAMETERS"
    assert by_path["blueprint.nodes[1].type"]["code"] == "NODE_TYPE_NOT_FOUND"
    assert any(p.startswith("blueprint.edges[3]") for p in by_path), by_path
    cycles = [e for e in problem["errors"] if e["code"] == "CIRCULAR_DEPENDENCY"]
    assert len(cycles) == 1 and cycles[0]["path"].startswith("blueprint.")
    assert all(node in cycles[0]["message"] for node in "cde"), cycles
    assert meta_keys(redis_client) == before  # refused before anything was stored


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"inputs": {}}, id="neither blueprint nor blueprint_id"),
        pytest.param({"blueprint": {"id": "x", "name": "X"}, "blueprint_id": "x"}, id="both"),
        pytest.param({"blueprint_id": "x", "surprise": 1}, id="unknown field"),
        pytest.param({"blueprint_id": "x", "inputs": [1, 2]}, id="inputs not an object"),
        pytest.param({"blueprint_id": "x", "idempotency_key": ""}, id="empty key"),
        pytest.param([1, 2], id="not an object"),
    ],
)
def test_a_malformed_request_is_a_422_problem(http: httpx.Client, body: Any) -> None:
    assert_problem(http.post("/v1/executions", json=body), 422, "VALIDATION_FAILED")


def test_a_body_that_is_not_json_is_a_400_problem_saying_where(http: httpx.Client) -> None:
    response = http.post(
        "/v1/executions", content=b"{not json", headers={"content-type": "application/json"}
    )
    problem = assert_problem(response, 400, "BAD_REQUEST")
    assert "line 1 column 2 (char 1)" in problem["detail"]


def large_body(size: int) -> Iterator[bytes]:
    """A JSON request body of about `size` bytes, in 1 MiB chunks."""
    yield b'{"blueprint": {"id": "big", "name": "'
    for _ in range(size // (1 << 20)):
        yield b"x" * (1 << 20)
    yield b'"}}'


def test_a_body_over_6_mib_is_refused_with_413(http: httpx.Client) -> None:
    body = b"".join(large_body(7 << 20))
    response = http.post(
        "/v1/executions", content=body, headers={"content-type": "application/json"}
    )
    assert_problem(response, 413, "PAYLOAD_TOO_LARGE")
    assert http.get("/healthz").status_code == 200  # and the server is fine afterwards


def test_a_chunked_body_over_6_mib_without_content_length_is_refused_with_413(
    http: httpx.Client,
) -> None:
    response = http.post(
        "/v1/executions", content=large_body(7 << 20), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_problem(response, 413, "PAYLOAD_TOO_LARGE")


def test_an_unknown_execution_is_404_everywhere(http: httpx.Client) -> None:
    missing = str(uuid.uuid4())
    assert_problem(http.get(f"/v1/executions/{missing}"), 404, "NOT_FOUND")
    assert_problem(http.get(f"/v1/executions/{missing}/events"), 404, "NOT_FOUND")
    for command in ("cancel", "pause", "resume"):
        assert_problem(http.post(f"/v1/executions/{missing}/{command}"), 404, "NOT_FOUND")
    assert_problem(http.post(f"/v1/executions/{missing}/explode"), 422)
    problem = assert_problem(
        http.post("/v1/executions", json={"blueprint_id": missing}), 404, "NOT_FOUND"
    )
    assert missing in problem["detail"]


def test_the_node_catalogue(http: httpx.Client) -> None:
    catalogue = http.get("/v1/nodes").json()
    types = {kind["type"] for kind in catalogue}
    assert {"edit-fields", "transform", "http-request", "delay", "loop", "group"} <= types
    one = http.get("/v1/nodes/delay").json()
    assert one["type"] == "delay" and "ms" in one["parameters"]["properties"]
    assert_problem(http.get("/v1/nodes/no-such-type"), 404, "NODE_TYPE_NOT_FOUND")


def test_a_blueprint_without_nodes_runs_or_is_refused(http: httpx.Client) -> None:
    empty = blueprint([])
    assert http.post("/v1/blueprints/validate", json=empty).status_code == 200
    response = http.post("/v1/executions", json={"blueprint": empty})
    assert response.status_code == 202, response.text
    assert follow(http, response.json()["id"])[-1].event == "execution.succeeded"


def test_routing_errors_are_problems_too(http: httpx.Client) -> None:
    assert_problem(http.get("/v1/no-such-thing"), 404, "NOT_FOUND")
    assert_problem(http.delete("/v1/executions"), 405, "METHOD_NOT_ALLOWED")


@pytest.fixture(scope="module")
def api_without_redis(data_dir: Path) -> Iterator[ApiProcess]:
    """`conductor api` whose CONDUCTOR_REDIS_URL is a closed port."""
    env = {
        "CONDUCTOR_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        "CONDUCTOR_DATA_DIR": str(data_dir),
    }
    process = ApiProcess(env).start()
    yield process
    process.stop()


def test_redis_unreachable_is_503_with_retry_after(api_without_redis: ApiProcess) -> None:
    with httpx.Client(base_url=api_without_redis.url, timeout=15) as http:
        requests = [
            http.build_request("POST", "/v1/executions", json={"blueprint": greeting()}),
            http.build_request("GET", f"/v1/executions/{uuid.uuid4()}"),
            http.build_request("GET", f"/v1/executions/{uuid.uuid4()}/events"),
            http.build_request("POST", f"/v1/executions/{uuid.uuid4()}/cancel"),
            http.build_request("GET", "/readyz"),
        ]
        for request in requests:
            response = http.send(request)
            assert_problem(response, 503, "TRANSPORT_ERROR")
            assert int(response.headers["retry-after"]) > 0, request.url
        assert http.get("/healthz").status_code == 200


# ---- 5. auth -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def api_with_token(api_env: dict[str, str], worker: WorkerProcess) -> Iterator[ApiProcess]:
    """`conductor api` with CONDUCTOR_API_TOKEN set, with the session's worker."""
    process = ApiProcess({**api_env, "CONDUCTOR_API_TOKEN": TOKEN}).start()
    yield process
    process.stop()


def test_a_token_is_required_when_configured(api_with_token: ApiProcess) -> None:
    with httpx.Client(base_url=api_with_token.url, timeout=15) as http:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            for method, path in (("GET", "/v1/nodes"), ("POST", "/v1/executions")):
                response = http.request(method, path, headers=headers, json={})
                assert_problem(response, 401, "UNAUTHORIZED")
                assert response.headers["www-authenticate"].startswith("Bearer")
        good = {"Authorization": f"Bearer {TOKEN}"}
        assert http.get("/v1/nodes", headers=good).status_code == 200
        response = http.post("/v1/executions", headers=good, json={"blueprint": greeting()})
        assert response.status_code == 202
        execution_id = response.json()["id"]
        events = follow(http, execution_id, headers=good)
        assert events[-1].event == "execution.succeeded"
        assert http.get("/healthz").status_code == 200  # open: liveness probes send no token


# ---- 6. the Blueprint store --------------------------------------------------------------------


def test_the_blueprint_store_over_http(http: httpx.Client) -> None:
    first = greeting(version="3.1.0")
    stored_id = first["id"]
    created = http.post("/v1/blueprints", json=first)
    assert created.status_code == 201
    assert created.json()["revision"] == 1 and created.json()["version"] == "3.1.0"
    assert created.json()["blueprint"]["nodes"][0]["position"] == {"x": 10, "y": 20}  # UI kept
    assert_problem(http.post("/v1/blueprints", json=first), 409, "CONFLICT")

    second = {**first, "name": "API test, second revision"}
    second["nodes"] = [*first["nodes"][:1], {**first["nodes"][1], "parameters": {
        "transformFunction": "x => x.n * 3"}}, first["nodes"][2]]  # fmt: skip
    replaced = http.put(f"/v1/blueprints/{stored_id}", json=second)
    assert replaced.status_code == 200 and replaced.json()["revision"] == 2
    latest = http.get(f"/v1/blueprints/{stored_id}").json()
    assert latest["revision"] == 2 and latest["name"] == "API test, second revision"
    assert http.get(f"/v1/blueprints/{stored_id}", params={"revision": 1}).json()["name"] == (
        "API test"
    )
    mismatch = http.put(f"/v1/blueprints/{stored_id}", json={**second, "id": "other"})
    assert assert_problem(mismatch, 422)["errors"][0]["path"] == "id"
    unknown = f"api-{uuid.uuid4().hex}"
    assert_problem(http.put(f"/v1/blueprints/{unknown}", json={**second, "id": unknown}), 404)

    execution_id, events = run(http, {"blueprint_id": stored_id, "inputs": {}})
    assert events[-1].data["data"]["result"]["data"]["sink"]["result"] == 60  # revision 2 ran
    view = http.get(f"/v1/executions/{execution_id}").json()
    assert view["blueprint_id"] == stored_id
    assert view["blueprint_version"] == "3.1.0+r2"

    assert http.delete(f"/v1/blueprints/{stored_id}").status_code == 204
    assert_problem(http.get(f"/v1/blueprints/{stored_id}"), 404)
    assert_problem(http.delete(f"/v1/blueprints/{stored_id}"), 404)
    assert_problem(http.post("/v1/executions", json={"blueprint_id": stored_id}), 404)
    kept = http.get(f"/v1/executions/{execution_id}").json()  # executions keep what they ran
    assert kept["blueprint_version"] == "3.1.0+r2"


def test_the_blueprint_listing_pages_with_a_cursor(http: httpx.Client) -> None:
    prefix = f"list-{uuid.uuid4().hex[:8]}"
    mine = [f"{prefix}-{i}" for i in range(5)]
    for blueprint_id in reversed(mine):
        assert http.post("/v1/blueprints", json={**greeting(), "id": blueprint_id}).is_success
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(1000):
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = http.get("/v1/blueprints", params=params).json()
        assert len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert seen == sorted(seen) and len(seen) == len(set(seen))
    assert [i for i in seen if i.startswith(prefix)] == mine
    assert_problem(
        http.get("/v1/blueprints", params={"cursor": "not-a-cursor"}), 400, "BAD_REQUEST"
    )
    for blueprint_id in mine:
        assert http.delete(f"/v1/blueprints/{blueprint_id}").status_code == 204


def test_validate_without_storing(http: httpx.Client) -> None:
    valid = greeting()
    response = http.post("/v1/blueprints/validate", json=valid)
    assert response.status_code == 200 and response.json()["valid"] is True
    assert_problem(http.get(f"/v1/blueprints/{valid['id']}"), 404)  # not stored
    invalid = blueprint([{"id": "a", "type": "no-such-type"}, delay("a", 0)])
    problem = assert_problem(http.post("/v1/blueprints/validate", json=invalid), 422)
    assert {e["path"] for e in problem["errors"]} >= {"nodes[0].type", "nodes[1].id"}


# ---- 7. execution control ----------------------------------------------------------------------


def test_pause_starts_no_new_node_and_resume_finishes_running_each_node_once(
    api: ApiProcess, http: httpx.Client
) -> None:
    execution_id = submit(http, {"blueprint": chain(300, "a", "b", "c")})
    feed = EventFeed(api.url, execution_id)
    feed.until(node_event("node.started", "b"))
    paused = http.post(f"/v1/executions/{execution_id}/pause")
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    assert http.get(f"/v1/executions/{execution_id}").json()["status"] == "paused"
    assert_problem(http.post(f"/v1/executions/{execution_id}/pause"), 409, "CONFLICT")
    feed.until(node_event("node.succeeded", "b"))  # the running node finishes
    with pytest.raises(queue.Empty):  # and nothing else starts while paused
        feed.next(timeout_s=1.0)
    view = http.get(f"/v1/executions/{execution_id}").json()
    assert view["status"] == "paused"
    assert {n["node_id"]: n["status"] for n in view["nodes"]}["c"] == "pending"

    resumed = http.post(f"/v1/executions/{execution_id}/resume")
    assert resumed.status_code == 200 and resumed.json()["status"] == "running"
    feed.rest()
    assert_contiguous(feed.seen)
    names = [e.event for e in feed.seen]
    assert names.index("execution.paused") < names.index("execution.resumed")
    assert names[-1] == "execution.succeeded"
    started = Counter(e.data["node_id"] for e in feed.seen if e.event == "node.started")
    assert started == {"a": 1, "b": 1, "c": 1}
    view = http.get(f"/v1/executions/{execution_id}").json()
    assert view["status"] == "succeeded"
    assert {(n["node_id"], n["status"], n["attempts"]) for n in view["nodes"]} == {
        ("a", "succeeded", 1), ("b", "succeeded", 1), ("c", "succeeded", 1),
    }  # fmt: skip


def test_resume_while_a_node_still_runs_runs_each_node_once(
    api: ApiProcess, http: httpx.Client
) -> None:
    execution_id = submit(http, {"blueprint": chain(600, "a", "b", "c")})
    feed = EventFeed(api.url, execution_id)
    feed.until(node_event("node.started", "a"))
    assert http.post(f"/v1/executions/{execution_id}/pause").status_code == 200
    assert http.post(f"/v1/executions/{execution_id}/resume").status_code == 200
    feed.rest()
    assert feed.seen[-1].event == "execution.succeeded"
    for kind in ("node.started", "node.succeeded"):
        runs = Counter(e.data["node_id"] for e in feed.seen if e.event == kind)
        assert runs == {"a": 1, "b": 1, "c": 1}, kind


def test_cancel_ends_a_running_execution_and_later_nodes_never_start(
    api: ApiProcess, http: httpx.Client, redis_client: redis.Redis
) -> None:
    execution_id = submit(http, {"blueprint": chain(300, "a", "b", "c", "d")})
    feed = EventFeed(api.url, execution_id)
    feed.until(node_event("node.started", "b"))
    cancelled = http.post(f"/v1/executions/{execution_id}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    terminal = feed.until(lambda e: e.event in TERMINAL)
    assert terminal.event == "execution.cancelled"
    assert terminal.data["data"]["error"]["code"] == "CANCELLED"
    assert feed.next() is None  # the stream ends after the terminal event

    def b_finished() -> bool:
        nodes = http.get(f"/v1/executions/{execution_id}").json()["nodes"]
        return any(n["node_id"] == "b" and n["finished_at"] for n in nodes)

    wait_until(b_finished)  # the running node finishes; what comes after it must not start
    # A negative: every message of the execution's nodes (c's, sent after b) ran and ended.
    wait_consumed(redis_client, execution_id=execution_id)
    view = http.get(f"/v1/executions/{execution_id}").json()
    assert view["status"] == "cancelled" and view["result"]["error"]["code"] == "CANCELLED"
    later = [n for n in view["nodes"] if n["node_id"] in {"c", "d"}]
    assert [n["started_at"] for n in later] == [None, None]
    assert [n["status"] for n in later] == ["cancelled", "cancelled"], later
    log = [json.loads(raw) for raw in redis_client.lrange(keys.events_log(execution_id), 0, -1)]
    assert {e["node_id"] for e in log if e["type"] == "node.started"} == {"a", "b"}


def test_control_of_a_finished_execution_is_a_conflict(http: httpx.Client) -> None:
    execution_id, _ = run(http, {"blueprint": chain(0, "a")})
    for command in ("cancel", "pause", "resume", "retry"):
        assert_problem(http.post(f"/v1/executions/{execution_id}/{command}"), 409)
    assert http.get(f"/v1/executions/{execution_id}").json()["status"] == "succeeded"


# ---- 8. listing and the history store ----------------------------------------------------------


@pytest.fixture(scope="module")
def recorder(api_env: dict[str, str]) -> Iterator[ServiceProcess]:
    """`conductor recorder` for this module only: the session-wide `recorder_process` would go
    on draining the durable event stream that tests/e2e/test_events.py reads later."""
    process = ServiceProcess(["recorder", "--name", "e2e-api-recorder"], api_env).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def recorded(http_module: httpx.Client, recorder: ServiceProcess) -> dict[str, str]:
    """Three executions of one Blueprint, recorded in the history store: status -> id."""
    shared = f"hist-{uuid.uuid4().hex[:8]}"
    failing = chain(5000, "slow", id=shared)
    failing["nodes"][0]["parameters"]["timeout"] = 50
    failing["nodes"][0]["parameters"]["retries"] = 0
    ids = {
        "succeeded": submit(http_module, {"blueprint": greeting(id=shared)}),
        "failed": submit(http_module, {"blueprint": failing}),
    }
    ids["cancelled"] = submit(http_module, {"blueprint": chain(300, "a", "b", id=shared)})
    assert http_module.post(f"/v1/executions/{ids['cancelled']}/cancel").status_code == 200
    for status, execution_id in ids.items():
        assert follow(http_module, execution_id)[-1].event == f"execution.{status}"

    def all_recorded() -> bool:
        page = http_module.get("/v1/executions", params={"blueprint_id": shared}).json()
        return {(i["id"], i["status"]) for i in page["items"]} == {(v, k) for k, v in ids.items()}

    wait_until(all_recorded)
    return {**ids, "blueprint_id": shared}


@pytest.fixture(scope="module")
def http_module(api: ApiProcess) -> Iterator[httpx.Client]:
    """An httpx client for module-scoped fixtures."""
    with httpx.Client(base_url=api.url, timeout=httpx.Timeout(10, read=20)) as client:
        yield client


def test_the_execution_listing_filters_and_pages(
    http: httpx.Client, recorded: dict[str, str]
) -> None:
    shared = recorded["blueprint_id"]
    seen: list[Json] = []
    cursor: str | None = None
    for _ in range(10):
        params: dict[str, Any] = {"blueprint_id": shared, "limit": 2}
        params |= {"cursor": cursor} if cursor else {}
        page = http.get("/v1/executions", params=params).json()
        assert len(page["items"]) <= 2
        seen += page["items"]
        if (cursor := page["next_cursor"]) is None:
            break
    assert len(seen) == 3 and {i["id"] for i in seen} == {
        recorded[s] for s in ("succeeded", "failed", "cancelled")
    }
    created = [i["created_at"] for i in seen]
    assert created == sorted(created, reverse=True)  # newest first

    for status in ("succeeded", "failed", "cancelled"):
        page = http.get("/v1/executions", params={"status": status, "limit": 1000}).json()
        assert recorded[status] in {i["id"] for i in page["items"]}
        assert {i["status"] for i in page["items"]} == {status}
        only = http.get("/v1/executions", params={"status": status, "blueprint_id": shared})
        assert [i["id"] for i in only.json()["items"]] == [recorded[status]]

    failed = next(i for i in seen if i["id"] == recorded["failed"])
    assert failed["error"]["code"] == "TIMEOUT" and failed["error"]["nodeId"] == "slow"
    assert_problem(http.get("/v1/executions", params={"status": "sleeping"}), 422)
    assert_problem(http.get("/v1/executions", params={"limit": 0}), 422)
    assert_problem(http.get("/v1/executions", params={"cursor": "garbage"}), 400)


def test_an_execution_redis_forgot_is_served_from_the_history_store(
    http: httpx.Client, redis_client: redis.Redis, recorded: dict[str, str]
) -> None:
    execution_id = recorded["succeeded"]
    live_view = http.get(f"/v1/executions/{execution_id}").json()
    live_events = follow(http, execution_id)
    redis_client.delete(*keys.execution_keys(execution_id))

    view = http.get(f"/v1/executions/{execution_id}").json()
    assert view["status"] == "succeeded" and view["result"] == live_view["result"]
    assert {n["node_id"] for n in view["nodes"]} == {"make", "double", "sink"}
    assert all(n["started_at"] and n["finished_at"] for n in view["nodes"])
    replayed = follow(http, execution_id)
    assert [(e.id, e.event) for e in replayed] == [(e.id, e.event) for e in live_events]
    tail = follow(http, execution_id, headers={"Last-Event-ID": "3"})
    assert [e.seq for e in tail] == [e.seq for e in live_events[3:]]
    assert tail == follow(http, execution_id, params={"after": 3})


# ---- 9. operations -----------------------------------------------------------------------------


def test_readiness_metrics_and_openapi(http: httpx.Client) -> None:
    assert http.get("/healthz").json() == {"status": "ok"}
    ready = http.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}
    metrics = http.get("/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    depth = [
        line for line in metrics.text.splitlines() if line.startswith("conductor_queue_depth{")
    ]
    assert depth and float(depth[0].rsplit(" ", 1)[1]) >= 0
    assert "conductor_executions{" in metrics.text
    paths = http.get("/openapi.json").json()["paths"]
    assert {
        "/v1/executions", "/v1/executions/{execution_id}", "/v1/executions/{execution_id}/events",
        "/v1/blueprints", "/v1/blueprints/{blueprint_id}", "/v1/blueprints/validate",
        "/v1/nodes", "/v1/nodes/{node_type}", "/healthz", "/readyz", "/metrics",
    } <= set(paths)  # fmt: skip


def test_an_unforeseen_error_is_a_problem_not_a_traceback(
    http: httpx.Client, redis_server: RedisServer
) -> None:
    execution_id = f"wrong-type-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(redis_server.url)
    client.set(keys.meta(execution_id), "not a hash")  # broken state: WRONGTYPE on reading it
    try:
        for response in (
            http.get(f"/v1/executions/{execution_id}"),
            http.post(f"/v1/executions/{execution_id}/cancel"),
        ):
            problem = assert_problem(response, 500, "INTERNAL_ERROR")
            assert "Traceback" not in response.text and "log" in problem["detail"]
    finally:
        client.delete(keys.meta(execution_id))
        client.close()
