"""The waits' contract (storage/waits.py) on MemoryStateStore and RedisStateStore: parking,
signals kept and taken once, time-outs, fencing, wake-ups claimed once (docs/waits.md)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from conductor.compiler import compile_plan
from conductor.embedded import RedisServer
from conductor.model.loader import load_blueprint_text
from conductor.model.waits import Wait
from storage import keys
from storage.event_data import check_data
from storage.events import EventType
from storage.memory_state import MemoryStateStore
from storage.redis_state import RedisStateStore
from storage.state import ExecutionStatus, NodeStatus, StateStore
from storage.waits import Parking, Sent, WakeUp

WAITS = "id: w\nname: W\nnodes: [{id: a, type: wait-for-signal, parameters: {name: go}}]\n"
LEASE_MS = 200
HOUR_MS = 3_600_000


@pytest.fixture(params=["memory", "redis"])
def state(request: pytest.FixtureRequest) -> Iterator[StateStore]:
    """Each store; Redis on database 1 of the session's server, where no worker claims the
    wake-ups these tests make."""
    if request.param == "memory":
        yield MemoryStateStore(lease_ms=LEASE_MS)
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    client = redis.Redis.from_url(server.url.rsplit("/", 1)[0] + "/1")
    client.delete(keys.WAKEUPS)
    yield RedisStateStore(client, lease_ms=LEASE_MS)
    client.close()


def create(state: StateStore) -> str:
    plan = compile_plan(load_blueprint_text(WAITS), f"contract-{uuid.uuid4()}", {})
    state.create(plan)
    return plan.execution_id


def attempt(state: StateStore, execution_id: str) -> int:
    load = state.load(execution_id, "a", "w1")
    assert load is not None and not load.busy
    return load.attempt


def test_a_wait_with_nothing_sent_parks_the_node(state: StateStore) -> None:
    execution_id = create(state)
    before = state.clock_ms()
    reply = state.park(execution_id, "a", Wait(HOUR_MS, "go"), attempt=attempt(state, execution_id))
    assert reply.parking is Parking.PARKED and reply.wake_ms is not None
    assert before + HOUR_MS <= reply.wake_ms <= state.clock_ms() + HOUR_MS
    assert state.parked(execution_id) == {"a": "go"}
    record = state.snapshot(execution_id, []).nodes["a"]
    assert record.status is NodeStatus.RUNNING and not record.held  # no attempt holds it
    event = state.events(execution_id)[-1]  # type: ignore[index]
    assert (event.type, event.node_id) == (EventType.NODE_PROGRESS, "a")
    assert event.data["waiting"] == {"signal": "go", "wake_ms": reply.wake_ms}
    check_data(event)
    again = attempt(state, execution_id)  # sent again: parks again, same wake time, no lost try
    reply2 = state.park(execution_id, "a", Wait(HOUR_MS, "go"), attempt=again)
    assert reply2.wake_ms == reply.wake_ms
    assert state.load(execution_id, "a", "w1").tries == 1  # type: ignore[union-attr]


def test_a_signal_sent_before_the_wait_is_kept_and_taken_once(state: StateStore) -> None:
    execution_id = create(state)
    first = state.signal(execution_id, "go", '{"n": 12345678901234567}', max_pending=10)
    assert (first.sent, first.woken) == (Sent.KEPT, ())
    state.signal(execution_id, "go", '"second"', max_pending=10)
    token = attempt(state, execution_id)
    reply = state.park(execution_id, "a", Wait(HOUR_MS, "go"), attempt=token)
    assert reply.parking is Parking.ARRIVED and reply.arrival is not None
    assert reply.arrival.payload == {"n": 12345678901234567}
    assert (reply.arrival.signal, reply.arrival.timed_out) == ("go", False)
    time.sleep(LEASE_MS * 2 / 1000)  # the attempt's worker died before storing the output
    retaken = state.park(
        execution_id, "a", Wait(HOUR_MS, "go"), attempt=attempt(state, execution_id)
    )
    assert retaken.arrival == reply.arrival  # the same signal, not the second one
    assert state.parked(execution_id) == {}


def test_a_signal_to_a_parked_node_wakes_it(state: StateStore) -> None:
    execution_id = create(state)
    state.park(execution_id, "a", Wait(HOUR_MS, "go"), attempt=attempt(state, execution_id))
    other = state.signal(execution_id, "other", "1", max_pending=10)
    assert other.woken == ()
    receipt = state.signal(execution_id, "go", '["yes"]', max_pending=10)
    assert (receipt.sent, receipt.woken) == (Sent.KEPT, ("a",))
    reply = state.park(execution_id, "a", Wait(HOUR_MS, "go"), attempt=attempt(state, execution_id))
    assert reply.arrival is not None and reply.arrival.payload == ["yes"]


def test_the_time_running_out_ends_the_wait(state: StateStore) -> None:
    execution_id = create(state)
    reply = state.park(execution_id, "a", Wait(30, "go"), attempt=attempt(state, execution_id))
    assert reply.parking is Parking.PARKED
    time.sleep(0.05)
    over = state.park(execution_id, "a", Wait(30, "go"), attempt=attempt(state, execution_id))
    assert over.arrival is not None
    assert (over.arrival.signal, over.arrival.timed_out) == ("go", True)


def test_a_retry_waits_anew(state: StateStore) -> None:
    execution_id = create(state)
    token = attempt(state, execution_id)
    state.park(execution_id, "a", Wait(1, "go"), attempt=token)
    time.sleep(0.01)
    token = attempt(state, execution_id)
    assert state.park(execution_id, "a", Wait(1, "go"), attempt=token).parking is Parking.ARRIVED
    error = {"code": "TIMEOUT", "message": "no signal", "nodeId": "a"}
    assert state.fail(execution_id, "a", error, attempt=token)
    state.cancel(execution_id)
    assert state.reopen(execution_id, ["a"]).value == "done"
    token = attempt(state, execution_id)
    reply = state.park(execution_id, "a", Wait(HOUR_MS, "go"), attempt=token)
    assert reply.parking is Parking.PARKED


def test_only_the_holding_attempt_of_a_live_execution_parks(state: StateStore) -> None:
    execution_id = create(state)
    token = attempt(state, execution_id)
    assert state.park(execution_id, "a", Wait(HOUR_MS), attempt=token + 1).parking is Parking.FENCED
    state.cancel(execution_id)
    assert state.park(execution_id, "a", Wait(HOUR_MS), attempt=token).parking is Parking.FENCED
    assert state.parked(execution_id) == {}


def test_signals_nothing_can_take_are_refused(state: StateStore) -> None:
    assert state.signal("contract-none", "go", "1", max_pending=10).sent is Sent.NOT_FOUND
    execution_id = create(state)
    state.signal(execution_id, "go", "1", max_pending=2)
    state.signal(execution_id, "go", "2", max_pending=2)
    assert state.signal(execution_id, "go", "3", max_pending=2).sent is Sent.FULL
    state.cancel(execution_id)
    over = state.signal(execution_id, "go", "4", max_pending=2)
    assert (over.sent, over.status) == (Sent.OVER, "cancelled")


def test_a_due_wake_up_is_claimed_once_until_it_is_due_again(state: StateStore) -> None:
    execution_id = create(state)
    state.park(execution_id, "a", Wait(500), attempt=attempt(state, execution_id))
    mine = WakeUp(execution_id, "a")
    assert mine not in state.claim_wakeups(10, retry_ms=500)  # not due yet
    time.sleep(0.55)
    assert mine in state.claim_wakeups(10, retry_ms=500)
    assert mine not in state.claim_wakeups(10, retry_ms=500)  # claimed: due again later
    time.sleep(0.55)
    assert mine in state.claim_wakeups(10, retry_ms=500)  # its claimer died: due again
    state.drop_wakeups([mine])
    time.sleep(0.55)
    assert mine not in state.claim_wakeups(10, retry_ms=500)


def test_a_wait_past_the_execution_deadline_wakes_at_the_deadline(state: StateStore) -> None:
    text = WAITS + "settings: {runtime: {timeout: 40}}\n"
    plan = compile_plan(load_blueprint_text(text), f"contract-{uuid.uuid4()}", {})
    state.create(plan)
    state.park(
        plan.execution_id, "a", Wait(HOUR_MS, "go"), attempt=attempt(state, plan.execution_id)
    )
    time.sleep(0.06)
    assert WakeUp(plan.execution_id, "a") in state.claim_wakeups(10, retry_ms=1000)


def test_a_signal_to_a_paused_execution_is_kept_for_its_resume(state: StateStore) -> None:
    execution_id = create(state)
    state.park(execution_id, "a", Wait(HOUR_MS, "go"), attempt=attempt(state, execution_id))
    running = frozenset({ExecutionStatus.RUNNING})
    state.transition(execution_id, running, ExecutionStatus.PAUSED, EventType.EXECUTION_PAUSED)
    receipt = state.signal(execution_id, "go", "1", max_pending=10)
    assert (receipt.sent, receipt.woken) == (Sent.KEPT, ())  # nothing to send while paused
    paused = frozenset({ExecutionStatus.PAUSED})
    state.transition(execution_id, paused, ExecutionStatus.RUNNING, EventType.EXECUTION_RESUMED)
    reply = state.park(execution_id, "a", Wait(HOUR_MS, "go"), attempt=attempt(state, execution_id))
    assert reply.arrival is not None and reply.arrival.payload == 1
