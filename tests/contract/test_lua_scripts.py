"""Each Lua script of storage/lua, run directly against a private Redis (as rq tests its
scripts): its named KEYS and ARGV, its reply codes, and what it leaves in the keys."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from conductor.embedded import RedisServer
from storage import keys
from storage.scripts import NAMES, OTHERS, Scripts, source

NODE = json.dumps({"type": "delay", "wires": [], "key": "a"})


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    opened = redis.Redis.from_url(redis_server.url, decode_responses=True)
    yield opened
    opened.close()


@pytest.fixture
def run(client: redis.Redis) -> Scripts:
    return Scripts(client)


@pytest.fixture
def ex() -> str:
    return f"lua-{uuid.uuid4()}"


def stream(ex: str) -> str:
    """A private stand-in for the events stream (the session's recorder-facing one stays
    clean of these partial events)."""
    return f"lua-test:{ex}:events"


def live(ex: str) -> str:
    """A private stand-in for the live index (no worker's reconciler looks at it)."""
    return f"lua-test:{ex}:live"


def emitting(ex: str) -> list[str]:
    return [keys.events_channel(ex), ex]


def logged(client: redis.Redis, ex: str) -> list[dict[str, Any]]:
    return [json.loads(text) for text in client.lrange(keys.events_log(ex), 0, -1)]


def create(run: Scripts, ex: str, specs: dict[str, str] | None = None) -> int:
    queued = json.dumps({"id": "q", "execution_id": ex, "seq": 1, "type": "execution.queued"})
    meta = {"status": "queued", "total": str(len(specs or {"a": NODE})), "seq": "1"}
    meta |= {"deadline_ms": "", "inputs": "{}", "variables": "{}"}
    return int(
        run(
            "create",
            [
                keys.meta(ex),
                keys.plan(ex),
                stream(ex),
                keys.events_log(ex),
                live(ex),
            ],
            [*emitting(ex), 60, queued, json.dumps(meta), json.dumps(specs or {"a": NODE})],
        )
    )


def load(run: Scripts, ex: str, key: str = "a", phase: str = "") -> Any:
    node_keys = [keys.meta(ex), keys.plan(ex), keys.nodes(ex), keys.outputs(ex)]
    node_keys += [stream(ex), keys.events_log(ex), live(ex)]
    return run("load", node_keys, [*emitting(ex), key, 1000, "w1", "e1", "e2", 10_000, phase])


def complete(run: Scripts, ex: str, token: str, key: str = "a") -> int:
    node_keys = [keys.meta(ex), keys.nodes(ex), keys.outputs(ex), keys.done(ex)]
    node_keys += [stream(ex), keys.events_log(ex), live(ex)]
    args = [*emitting(ex), key, '{"v": 1}', "succeeded", 2000, "e3", "node.succeeded", "", token]
    return int(run("complete", node_keys, args))


def set_node(run: Scripts, ex: str, token: str, retry_in_s: str = "") -> int:
    node_keys = [keys.meta(ex), keys.nodes(ex), stream(ex), keys.events_log(ex)]
    status, kind = ("pending", "node.retrying") if retry_in_s else ("failed", "node.failed")
    args = [*emitting(ex), "a", status, 3000, "e4", kind, '{"code": "X"}', retry_in_s, token]
    return int(run("set_node", node_keys, args))


def cancel(run: Scripts, ex: str) -> int:
    return int(run("cancel", [keys.meta(ex), keys.plan(ex), keys.nodes(ex)], [4000]))


def finish(run: Scripts, ex: str, status: str) -> int:
    head = json.dumps({"id": "t", "type": f"execution.{status}"})[:-1] + ',"seq":'
    data = ',"data":{"status":"' + status + '","cancelled":'
    node_keys = [keys.result(ex), keys.meta(ex), stream(ex), keys.events_log(ex), live(ex)]
    node_keys += [keys.plan(ex), keys.nodes(ex)]
    args = [*emitting(ex), '{"r": 1}', status, 5000, 60, head, data, keys.done_channel(ex)]
    return int(run("finish", node_keys, args))


def test_every_script_loads_with_the_prelude(client: redis.Redis) -> None:
    for name in (*NAMES, *OTHERS):
        assert client.script_load(source(name))


def test_create_writes_once_and_logs_the_queued_event(
    run: Scripts, client: redis.Redis, ex: str
) -> None:
    assert create(run, ex) == 1
    assert create(run, ex) == 0
    assert client.hget(keys.meta(ex), "status") == "queued"
    assert client.hget(keys.plan(ex), "a") == NODE
    assert [e["type"] for e in logged(client, ex)] == ["execution.queued"]
    assert client.zscore(live(ex), ex) is not None
    assert 0 < client.ttl(keys.meta(ex)) <= 60


def test_load_takes_a_free_node_and_reports_a_held_one_busy(
    run: Scripts, client: redis.Redis, ex: str
) -> None:
    create(run, ex)
    first = load(run, ex)
    assert (first[1], first[2], first[3], first[9]) == ("queued", "pending", 1, 0)
    again = load(run, ex)
    assert (again[2], again[3], again[9]) == ("running", 1, 1)
    assert load(run, ex, "zz") is None
    assert load(run, ex, phase="collect")[11] == 1  # not a loop: the collect phase is wrong
    types = [e["type"] for e in logged(client, ex)]
    assert types == ["execution.queued", "execution.started", "node.started"]


def test_complete_records_once_for_the_holding_attempt(
    run: Scripts, client: redis.Redis, ex: str
) -> None:
    create(run, ex)
    load(run, ex)
    assert complete(run, ex, "7") == 0  # not the holding attempt
    assert complete(run, ex, "1") == 2  # the only node: the last
    assert complete(run, ex, "1") == 0
    assert client.hget(keys.outputs(ex), "a") == '{"v": 1}'
    assert logged(client, ex)[-1]["data"] == {"duration_ms": 1000}


def test_a_nodes_keys_take_the_executions_ttl_once_at_their_first_write(
    run: Scripts, client: redis.Redis, ex: str
) -> None:
    create(run, ex)
    load(run, ex)
    assert 0 < client.ttl(keys.nodes(ex)) <= 60
    client.expire(keys.meta(ex), 600)  # only create, reopen and retention set it
    assert complete(run, ex, "1") == 2
    assert 0 < client.ttl(keys.nodes(ex)) <= 60  # had one: no EXPIRE per node
    assert 60 < client.ttl(keys.outputs(ex)) <= 600  # first write: the meta hash's
    assert 60 < client.ttl(keys.done(ex)) <= 600


def test_set_node_records_a_retry_then_a_failure(
    run: Scripts, client: redis.Redis, ex: str
) -> None:
    create(run, ex)
    load(run, ex)
    assert set_node(run, ex, "1", retry_in_s="1.5") == 1
    assert client.hget(keys.nodes(ex), "a:status") == "pending"
    assert logged(client, ex)[-1]["data"] == {
        "error": {"code": "X"},
        "retry_in_s": 1.5,
        "attempt": 1,
    }
    assert set_node(run, ex, "") == 1
    assert logged(client, ex)[-1]["data"] == {"error": {"code": "X"}, "settled": False}
    assert set_node(run, ex, "") == 0  # failed already


def test_set_node_is_refused_once_the_execution_is_over(
    run: Scripts, client: redis.Redis, ex: str
) -> None:
    create(run, ex)
    load(run, ex)
    client.hset(keys.meta(ex), "status", "failed")
    assert set_node(run, ex, "1", retry_in_s="1") == 0
    assert logged(client, ex)[-1]["type"] == "node.started"


def test_progress_emits_only_while_live(run: Scripts, client: redis.Redis, ex: str) -> None:
    create(run, ex)
    node_keys = [keys.meta(ex), stream(ex), keys.events_log(ex)]
    assert run("progress", node_keys, [*emitting(ex), "a", 1000, "p", 0.5, "half"]) == 1
    assert logged(client, ex)[-1]["data"] == {"progress": 0.5, "message": "half"}
    client.hset(keys.meta(ex), "status", "cancelled")
    assert run("progress", node_keys, [*emitting(ex), "a", 1000, "p", 0.6, "more"]) == 0


def test_transition_moves_only_from_the_allowed_states(
    run: Scripts, client: redis.Redis, ex: str
) -> None:
    create(run, ex)
    node_keys = [keys.meta(ex), stream(ex), keys.events_log(ex), live(ex)]

    def move(target: str, allowed: str) -> int:
        return int(run("transition", node_keys, [*emitting(ex), target, 1, "t", "x", allowed]))

    assert move("paused", "queued,running") == 1
    assert client.zscore(live(ex), ex) is None
    assert move("paused", "queued,running") == 0
    assert move("running", "paused") == 1
    assert client.zscore(live(ex), ex) is not None
    assert (
        int(run("transition", [keys.meta("nope"), *node_keys[1:]], ["c", "nope", "x"] + [0] * 4))
        == -1
    )


def test_finish_sets_the_result_once_and_a_cancel_wins(
    run: Scripts, client: redis.Redis, ex: str
) -> None:
    create(run, ex)
    client.hset(keys.meta(ex), "status", "cancelled")
    assert finish(run, ex, "failed") == 0
    assert finish(run, ex, "cancelled") == 1
    assert finish(run, ex, "cancelled") == 0
    terminal = logged(client, ex)[-1]
    assert (terminal["type"], terminal["seq"]) == ("execution.cancelled", 2)
    assert terminal["data"] == {"status": "cancelled", "cancelled": ["a"]}
    assert client.get(keys.result(ex)) == '{"r": 1}'
    assert client.zscore(live(ex), ex) is None


def test_finish_of_a_failure_cancels_the_nodes_without_an_outcome(
    run: Scripts, client: redis.Redis, ex: str
) -> None:
    create(run, ex, {"a": NODE, "b": NODE, "c": NODE})
    load(run, ex)  # a runs
    client.hset(keys.nodes(ex), "b:status", "succeeded")
    assert finish(run, ex, "failed") == 1
    assert client.hmget(keys.nodes(ex), "a:status", "b:status", "c:status") == [
        "cancelled",
        "succeeded",
        "cancelled",
    ]
    assert logged(client, ex)[-1]["data"]["cancelled"] == ["a", "c"]


def test_expand_adds_items_only_for_the_holding_attempt(
    run: Scripts, client: redis.Redis, ex: str
) -> None:
    create(run, ex)
    load(run, ex)
    node_keys = [keys.meta(ex), keys.plan(ex), keys.outputs(ex), keys.nodes(ex)]
    specs = json.dumps({"a#0/w": NODE, "a": NODE})
    outputs = json.dumps({"a#0": '{"item": 1}'})
    assert run("expand", node_keys, ["a", "9", 1, specs, outputs]) == 0
    assert run("expand", node_keys, ["a", "1", 1, specs, outputs]) == 1
    assert client.hget(keys.meta(ex), "total") == "2"
    assert client.hget(keys.outputs(ex), "a#0") == '{"item": 1}'
    assert client.hget(keys.nodes(ex), "a:lease_ms") == "0"


def test_heartbeat_renews_only_the_holding_attempts_lease(
    run: Scripts, client: redis.Redis, ex: str
) -> None:
    create(run, ex)
    load(run, ex)
    node_keys = [keys.meta(ex), keys.nodes(ex), live(ex)]
    assert run("heartbeat", node_keys, ["a", "1", 10_000, ex]) == ["running", 1]
    assert run("heartbeat", node_keys, ["a", "2", 10_000, ex]) == ["running", 0]
    assert run("heartbeat", [keys.meta("nope"), *node_keys[1:]], ["a", "1", 1, "nope"]) == ["", 0]


def test_cancel_marks_unfinished_nodes(run: Scripts, client: redis.Redis, ex: str) -> None:
    assert cancel(run, ex) == -1
    create(run, ex, {"a": NODE, "b": NODE})
    load(run, ex)
    assert cancel(run, ex) == 1
    assert client.hmget(keys.nodes(ex), "a:status", "b:status") == ["cancelled", "cancelled"]
    assert cancel(run, ex) == 0


def test_reopen_resets_failed_and_cancelled_nodes(
    run: Scripts, client: redis.Redis, ex: str
) -> None:
    create(run, ex, {"a": NODE, "b": NODE})
    load(run, ex)
    cancel(run, ex)
    finish(run, ex, "cancelled")
    node_keys = [keys.meta(ex), keys.nodes(ex), keys.outputs(ex), keys.done(ex), keys.result(ex)]
    node_keys += [stream(ex), keys.events_log(ex), live(ex), keys.plan(ex), keys.signals(ex)]
    assert run("reopen", node_keys, [*emitting(ex), 6000, "r", 60, "[]"]) == 1
    assert client.hmget(keys.nodes(ex), "a:status", "a:base") == ["pending", "1"]
    assert client.get(keys.result(ex)) is None
    assert logged(client, ex)[-1]["data"] == {
        "status": "running",
        "retry": True,
        "nodes": ["a", "b"],
    }
    assert run("reopen", node_keys, [*emitting(ex), 6000, "r", 60, "[]"]) == 0


def test_note_lapsed_counts_each_lost_attempt_once(
    run: Scripts, client: redis.Redis, ex: str
) -> None:
    assert run("note_lapsed", [keys.meta(ex)], ['{"a": "1"}']) == 0  # unknown execution
    create(run, ex)
    assert run("note_lapsed", [keys.meta(ex)], ['{"a": "1"}']) == 1
    assert run("note_lapsed", [keys.meta(ex)], ['{"a": "1"}']) == 0
    assert client.hget(keys.meta(ex), "lapsed:a") == "1"


def test_release_lock_frees_only_the_holders_lock(
    run: Scripts, client: redis.Redis, ex: str
) -> None:
    lock = keys.lock(ex)
    client.set(lock, "mine", px=10_000)
    assert run("release_lock", [lock], ["theirs"]) == 0
    assert run("release_lock", [lock], ["mine"]) == 1
    assert client.get(lock) is None


def test_expire_finished_shortens_only_a_finished_executions_keys(
    client: redis.Redis, ex: str, run: Scripts
) -> None:
    create(run, ex)
    script = client.register_script(source("expire_finished"))
    assert script(keys=[keys.meta(ex), keys.plan(ex)], args=[5]) == 0
    client.hset(keys.meta(ex), "status", "succeeded")
    assert script(keys=[keys.meta(ex), keys.plan(ex)], args=[5]) == 1
    assert 0 < client.ttl(keys.plan(ex)) <= 5


def test_take_token_takes_up_to_the_burst_then_says_the_wait(client: redis.Redis, ex: str) -> None:
    script = client.register_script(source("take_token"))
    bucket = [keys.rate_limit(ex)]
    assert [script(keys=bucket, args=[1, 2, 1000]) for _ in range(2)] == [0, 0]
    assert script(keys=bucket, args=[1, 2, 1000]) == 1000
    assert script(keys=bucket, args=[1, 2, 2000]) == 0  # refilled one a second later
