"""Events: every state change, in seq order, on the durable stream and on pub/sub alike."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import redis

from conductor.model.loader import load_blueprint_text
from storage import keys
from storage.events import Event, EventType
from tests.e2e.conftest import RunBlueprint

DIAMOND = """
id: diamond
name: Diamond
nodes:
  - {id: a, type: edit-fields, parameters: {values: {n: 2}, keepOnlySet: true}}
  - {id: b, type: transform, parameters: {transformFunction: "x => x.n + 1"}}
  - {id: c, type: transform, parameters: {transformFunction: "x => x.n * 10"}}
  - {id: d, type: delay, parameters: {ms: 0}}
edges: [{source: a, target: b}, {source: a, target: c}, {source: b, target: d}, {source: c, target: d}]
"""


def stream_events(client: redis.Redis, execution_id: str) -> list[Event]:
    """The execution's events on the durable stream, in stream order."""
    found = []
    for _, fields in client.xrange(keys.EVENTS_STREAM) or []:
        assert fields is not None
        event = Event.model_validate_json(fields[b"event"])
        if event.execution_id == execution_id:
            found.append(event)
    return found


def test_a_run_emits_every_state_change_in_seq_order(
    run_blueprint: RunBlueprint, redis_client: redis.Redis
) -> None:
    result = run_blueprint(DIAMOND)
    events = stream_events(redis_client, result["id"])
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[0].type is EventType.EXECUTION_QUEUED
    assert events[0].data["blueprint_id"] == "diamond" and events[0].data["nodes"] == 4
    assert events[1].type is EventType.EXECUTION_STARTED
    assert events[-1].type is EventType.EXECUTION_SUCCEEDED
    assert events[-1].data["result"] == result
    for node in "abcd":
        kinds = [e.type for e in events if e.node_id == node]
        assert kinds == [EventType.NODE_STARTED, EventType.NODE_SUCCEEDED], (node, kinds)
    started = next(e for e in events if e.node_id == "b" and e.type is EventType.NODE_STARTED)
    assert started.data == {"attempt": 1, "worker": started.data["worker"], "type": "transform"}
    assert started.data["worker"].startswith("e2e@")
    assert len({e.id for e in events}) == len(events)


def test_retries_and_failures_are_events(
    run_blueprint: RunBlueprint, redis_client: redis.Redis
) -> None:
    result = run_blueprint(
        "id: r\nname: R\nnodes:\n  - {id: slow, type: delay, parameters: {ms: 5000, timeout: 100, retries: 1}}\n"
    )
    kinds = [(e.type, e.node_id) for e in stream_events(redis_client, result["id"])]
    assert kinds == [
        (EventType.EXECUTION_QUEUED, None),
        (EventType.EXECUTION_STARTED, None),
        (EventType.NODE_STARTED, "slow"),
        (EventType.NODE_RETRYING, "slow"),
        (EventType.NODE_STARTED, "slow"),
        (EventType.NODE_FAILED, "slow"),
        (EventType.EXECUTION_FAILED, None),
    ]
    retrying = stream_events(redis_client, result["id"])[3]
    assert retrying.data["attempt"] == 1 and retrying.data["retry_in_s"] > 0
    assert retrying.data["error"]["code"] == "TIMEOUT"


def test_live_subscribers_see_the_same_events(
    run_blueprint: RunBlueprint, redis_client: redis.Redis, redis_server: Any
) -> None:
    received: list[dict[str, Any]] = []
    listener = redis.Redis.from_url(redis_server.url).pubsub(  # type: ignore[no-untyped-call]
        ignore_subscribe_messages=True
    )
    listener.psubscribe("conductor:events:*")
    done = threading.Event()

    def listen() -> None:
        while not done.is_set():
            message = listener.get_message(timeout=0.1)
            if message:
                received.append(json.loads(message["data"]))

    thread = threading.Thread(target=listen)
    thread.start()
    try:
        result = run_blueprint(DIAMOND)
    finally:
        done.set()
        thread.join()
        listener.close()
    live = [e for e in received if e["execution_id"] == result["id"]]
    durable = stream_events(redis_client, result["id"])
    assert [e["seq"] for e in live] == [e.seq for e in durable]
    assert [Event.model_validate(e) for e in live] == durable


def test_a_long_delay_reports_progress(
    run_blueprint: RunBlueprint, redis_client: redis.Redis
) -> None:
    result = run_blueprint(
        "id: p\nname: P\nnodes: [{id: wait, type: delay, parameters: {ms: 2500}}]\n"
    )
    progress = [
        e for e in stream_events(redis_client, result["id"]) if e.type is EventType.NODE_PROGRESS
    ]
    assert len(progress) >= 2
    fractions = [e.data["progress"] for e in progress]
    assert fractions == sorted(fractions) and 0 < fractions[0] < 1
    assert all(e.node_id == "wait" and e.data["message"] == "waiting" for e in progress)


def test_the_done_channel_carries_only_the_terminal_event(
    run_blueprint: RunBlueprint, redis_client: redis.Redis, redis_server: Any
) -> None:
    listener = redis.Redis.from_url(redis_server.url).pubsub(  # type: ignore[no-untyped-call]
        ignore_subscribe_messages=True
    )
    listener.psubscribe("conductor:done:*")
    try:
        result = run_blueprint(DIAMOND)
        messages = []
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:  # the subscribe confirmation comes back as None
            message = listener.get_message(timeout=0.1)
            if message is not None:
                messages.append(json.loads(message["data"]))
    finally:
        listener.close()
    mine = [m for m in messages if m["execution_id"] == result["id"]]
    assert [m["type"] for m in mine] == ["execution.succeeded"]
    assert mine[0] == stream_events(redis_client, result["id"])[-1].model_dump(mode="json")


CACHED = """
id: cached
name: Cached
nodes:
  - id: slow
    type: transform
    cache: {ttl_s: 60}
    parameters: {transformFunction: "x => x.n * 2"}
"""


def test_a_cached_node_reuses_its_output_for_the_same_inputs(
    run_blueprint: RunBlueprint, redis_client: redis.Redis
) -> None:
    first = run_blueprint(CACHED, {"n": 21})
    again = run_blueprint(CACHED, {"n": 21})
    other = run_blueprint(CACHED, {"n": 5})
    assert first["data"] == again["data"] and first["data"]["slow"]["result"] == 42
    assert other["data"]["slow"]["result"] == 10

    def outcome(result: dict[str, Any]) -> EventType:
        kinds = [e.type for e in stream_events(redis_client, result["id"]) if e.node_id == "slow"]
        return kinds[-1]

    assert outcome(first) is EventType.NODE_SUCCEEDED
    assert outcome(again) is EventType.NODE_CACHED
    assert outcome(other) is EventType.NODE_SUCCEEDED
    ttl = max(redis_client.ttl(key) for key in redis_client.scan_iter("conductor:cache:*"))
    assert 0 < ttl <= 60


def test_cache_true_is_the_default_policy_and_false_none() -> None:
    on = load_blueprint_text(CACHED.replace("cache: {ttl_s: 60}", "cache: true"))
    off = load_blueprint_text(CACHED.replace("cache: {ttl_s: 60}", "cache: false"))
    assert on.nodes[0].cache is not None and on.nodes[0].cache.ttl_s == 3600
    assert off.nodes[0].cache is None
