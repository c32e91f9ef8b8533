"""Concurrency keys in Redis (storage/concurrency.py, create.lua, release_slot.lua): a slot or a
place in line at creation, in one script; a slot given back and the next in line admitted in
one; slots of executions that are over or gone reclaimed by the sweep."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
import redis

from conductor.embedded import RedisServer
from conductor.model.plan import ExecutionPlan, PlannedNode
from storage import keys
from storage.concurrency import ConcurrencySlots
from storage.redis_state import RedisStateStore
from storage.state import ExecutionStatus


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    opened = redis.Redis.from_url(redis_server.url, decode_responses=True)
    yield opened
    # no worker's reconciler (e2e tests share the server) is to repair these executions
    live: list[str] = opened.zrange(keys.LIVE_EXECUTIONS, 0, -1)  # type: ignore[assignment]
    ours = [e for e in live if e.startswith("slots-")]
    if ours:
        opened.zrem(keys.LIVE_EXECUTIONS, *ours)
    opened.close()


@pytest.fixture
def state(client: redis.Redis) -> RedisStateStore:
    return RedisStateStore(client)


@pytest.fixture
def slots(client: redis.Redis) -> ConcurrencySlots:
    return ConcurrencySlots(client)


@pytest.fixture
def key() -> str:
    return f"customer-{uuid.uuid4().hex[:8]}"


def plan(key: str | None, max_running: int = 1, timeout_ms: int | None = None) -> ExecutionPlan:
    node = PlannedNode(key="a", id="a", type="delay", parameters={"ms": 1})
    return ExecutionPlan(
        execution_id=f"slots-{uuid.uuid4()}",
        blueprint_id="bp",
        blueprint_name="slots",
        nodes={"a": node},
        sinks=["a"],
        timeout_ms=timeout_ms,
        concurrency_key=key,
        max_running=max_running if key else None,
    )


def create(state: RedisStateStore, key: str | None, max_running: int = 1) -> tuple[str, bool]:
    made = plan(key, max_running)
    return made.execution_id, state.create(made)


def end(state: RedisStateStore, execution_id: str, status: ExecutionStatus) -> None:
    result = json.dumps({"id": execution_id, "status": status.value})
    assert state.finish(execution_id, status, result)


def live(client: redis.Redis, execution_id: str) -> bool:
    return client.zscore(keys.LIVE_EXECUTIONS, execution_id) is not None


def test_slots_up_to_the_limit_then_a_line_with_a_reason(
    state: RedisStateStore, slots: ConcurrencySlots, client: redis.Redis, key: str
) -> None:
    first, admitted_first = create(state, key, max_running=2)
    second, admitted_second = create(state, key, max_running=2)
    third, admitted_third = create(state, key, max_running=2)
    assert (admitted_first, admitted_second, admitted_third) == (True, True, False)
    assert sorted(slots.running(key)) == sorted([first, second])  # admitted in one ms: any order
    assert slots.waiting(key) == [third]
    assert slots.position(key, third) == 1
    assert slots.position(key, first) is None
    meta = state.snapshot(third, []).execution
    assert meta is not None
    assert meta.status is ExecutionStatus.QUEUED
    assert meta.queued_reason is not None and key in meta.queued_reason
    assert meta.concurrency_key == key and meta.max_running == 2
    assert not live(client, third), "the reconciler must not send a waiting execution"
    assert live(client, first)
    queued = state.events(third)
    assert queued is not None
    assert queued[0].data["reason"] == meta.queued_reason
    assert queued[0].data["concurrency_key"] == key
    first_event = state.events(first)
    assert first_event is not None and "reason" not in first_event[0].data
    assert key in client.smembers(keys.SLOT_KEYS)


def test_an_end_admits_the_next_in_line_first_in_first_out(
    state: RedisStateStore, slots: ConcurrencySlots, client: redis.Redis, key: str
) -> None:
    running, _ = create(state, key)
    line = [create(state, key)[0] for _ in range(3)]
    end(state, running, ExecutionStatus.SUCCEEDED)
    assert slots.release(running) == [line[0]]
    assert slots.running(key) == [line[0]]
    assert slots.waiting(key) == line[1:]
    meta = state.snapshot(line[0], []).execution
    assert meta is not None
    assert meta.queued_reason is None and meta.admitted_ms is not None
    assert live(client, line[0])
    assert slots.release(running) == [], "a second release admits no one"
    for before, after in zip(line, [*line[1:], None], strict=True):
        end(state, before, ExecutionStatus.FAILED)
        assert slots.release(before) == ([after] if after else [])
    assert key not in client.smembers(keys.SLOT_KEYS), "an idle key leaves the sweep's set"


def test_an_execution_that_ends_while_waiting_leaves_the_line(
    state: RedisStateStore, slots: ConcurrencySlots, key: str
) -> None:
    running, _ = create(state, key)
    cancelled, _ = create(state, key)
    after, _ = create(state, key)
    assert state.cancel(cancelled).value == "done"
    end(state, cancelled, ExecutionStatus.CANCELLED)
    assert slots.release(cancelled) == []
    assert slots.waiting(key) == [after]
    end(state, running, ExecutionStatus.CANCELLED)
    assert slots.release(running) == [after]


def test_a_higher_limit_admits_several(
    state: RedisStateStore, slots: ConcurrencySlots, key: str
) -> None:
    """Each execution counts against its own limit (its Blueprint's max_running)."""
    strict, _ = create(state, key, max_running=1)
    assert not create(state, key, max_running=1)[1]
    ended, _ = create(state, key, max_running=1)
    end(state, ended, ExecutionStatus.CANCELLED)
    slots.release(ended)
    loose = [create(state, key, max_running=3) for _ in range(3)]
    assert [admitted for _, admitted in loose] == [False, False, False], "FIFO: behind the line"
    end(state, strict, ExecutionStatus.SUCCEEDED)
    admitted = slots.release(strict)
    assert len(admitted) == 3, "the strict one, then two loose ones up to their limit of 3"
    assert admitted[1:] == [loose[0][0], loose[1][0]]


def test_the_sweep_reclaims_slots_of_executions_over_or_gone(
    state: RedisStateStore, slots: ConcurrencySlots, client: redis.Redis, key: str
) -> None:
    over, _ = create(state, key, max_running=2)
    gone, _ = create(state, key, max_running=2)
    line = [create(state, key, max_running=2)[0] for _ in range(3)]
    end(state, over, ExecutionStatus.FAILED)  # its finalize was cut short: no release
    client.delete(*keys.execution_keys(gone))  # expired
    assert slots.sweep() == line[:2]
    assert sorted(slots.running(key)) == sorted(line[:2])
    assert slots.sweep() == []


def test_a_waiting_execution_is_timed_from_its_admission(
    state: RedisStateStore, slots: ConcurrencySlots, client: redis.Redis, key: str
) -> None:
    running, _ = create(state, key)
    waiting = plan(key, timeout_ms=60_000)
    assert not state.create(waiting)
    meta_key = keys.meta(waiting.execution_id)
    created = int(client.hget(meta_key, "created_ms") or 0)
    client.hset(meta_key, mapping={"created_ms": created - 50_000, "deadline_ms": created + 10_000})
    end(state, running, ExecutionStatus.SUCCEEDED)
    assert slots.release(running) == [waiting.execution_id]
    meta = state.snapshot(waiting.execution_id, []).execution
    assert meta is not None and meta.admitted_ms is not None and meta.deadline_ms is not None
    assert meta.deadline_ms - meta.admitted_ms == 60_000


def test_executions_without_a_key_take_no_slot(
    state: RedisStateStore, slots: ConcurrencySlots, client: redis.Redis
) -> None:
    execution_id, admitted = create(state, None)
    assert admitted
    assert live(client, execution_id)
    end(state, execution_id, ExecutionStatus.SUCCEEDED)
    assert slots.release(execution_id) == []


def test_a_retry_claims_a_slot_or_waits_at_the_end_of_the_line(
    state: RedisStateStore, slots: ConcurrencySlots, client: redis.Redis, key: str
) -> None:
    retried, _ = create(state, key)
    end(state, retried, ExecutionStatus.FAILED)
    assert slots.release(retried) == []
    assert state.reopen(retried, ["a"]).value == "done"
    assert slots.claim(retried), "a free slot: it runs again at once"
    assert slots.claim(retried), "it holds the slot already"
    assert slots.running(key) == [retried]
    end(state, retried, ExecutionStatus.FAILED)
    slots.release(retried)

    holder, _ = create(state, key)
    assert state.reopen(retried, ["a"]).value == "done"
    assert not slots.claim(retried)
    assert slots.waiting(key) == [retried]
    meta = state.snapshot(retried, []).execution
    assert meta is not None and meta.queued_reason is not None
    assert not live(client, retried)
    assert not slots.claim(retried), "once in line"
    assert slots.waiting(key) == [retried]
    end(state, holder, ExecutionStatus.SUCCEEDED)
    assert slots.release(holder) == [retried]
    assert live(client, retried)


def test_a_retry_without_a_key_needs_no_slot(
    state: RedisStateStore, slots: ConcurrencySlots
) -> None:
    execution_id, _ = create(state, None)
    assert slots.claim(execution_id)
