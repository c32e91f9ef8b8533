"""Fencing and the reconciler's finalize repair, driven step by step on a private Redis.

No worker runs here: the test plays the workers (a cut-off attempt and the one that took over,
or a worker that died between its last node and finalizing), so every step is a real event the
test waits on, never a sleep. `python -m tests.mutants` breaks each mechanism and checks these
tests notice.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from conductor.compiler import compile_plan
from conductor.control import Control, ControlOutcome
from conductor.embedded import RedisServer
from conductor.model.loader import load_blueprint_text
from conductor.reconciler import Reconciler, Repair
from storage import keys
from storage.events import Event, EventType
from storage.redis_state import RedisStateStore
from storage.state import Completion, ExecutionStatus, NodeStatus
from tests.e2e.fault_stack import Stack, chain, delay, wait_until
from workers.tasks import make_stores

pytestmark = pytest.mark.timeout(60)

LEASE_S = 0.3  # short, so a lapsed lease is a fraction of a second away


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A private Redis and nothing else: the test plays every worker."""
    base = tmp_path_factory.mktemp("guarantees")
    server = RedisServer(base / "redis").start()
    stack = Stack(server, base / "data", f"sqlite:///{base / 'history.sqlite3'}")
    yield stack
    stack.stop_all()
    server.stop()


@pytest.fixture
def state(stack: Stack) -> RedisStateStore:
    """A state store whose leases last LEASE_S."""
    store = make_stores(stack.settings).state
    assert isinstance(store, RedisStateStore)
    return RedisStateStore(store.client, ttl_s=store.ttl_s, lease_ms=int(LEASE_S * 1000))


def create(state: RedisStateStore, text: str) -> str:
    """Store a new execution of Blueprint YAML without sending any message; its id."""
    plan = compile_plan(load_blueprint_text(text), f"g-{uuid.uuid4()}", {})
    state.create(plan)
    return plan.execution_id


def node_events(stack: Stack, execution_id: str, node_id: str) -> list[str]:
    """The types of the node's events, in order."""
    raw = stack.client.lrange(keys.events_log(execution_id), 0, -1)
    events = [Event.model_validate_json(text) for text in raw]
    return [event.type for event in events if event.node_id == node_id]


def output(stack: Stack, execution_id: str, key: str) -> object:
    value = stack.client.hget(keys.outputs(execution_id), key)
    assert value is not None, f"no output stored for {key}"
    return json.loads(value)


def test_a_stale_attempts_outcome_is_refused_after_another_took_over(
    stack: Stack, state: RedisStateStore
) -> None:
    execution_id = create(state, chain(("a", delay(0)), ("b", delay(0))))
    cut_off = state.load(execution_id, "a", "cut-off@h")
    assert cut_off is not None and not cut_off.busy and cut_off.attempt == 1
    early = state.load(execution_id, "a", "healthy@h")  # the lease is still fresh: not taken
    assert early is not None and early.busy

    # The cut-off attempt stops renewing its lease; wait until Redis's clock passes it.
    wait_until(
        lambda: state.snapshot(execution_id, []).nodes["a"].lease_lapsed(state.clock_ms()),
        "the cut-off attempt's lease to lapse",
    )
    healthy = state.load(execution_id, "a", "healthy@h")
    assert healthy is not None and not healthy.busy and healthy.attempt == 2

    # The cut-off task ends now: each way it could store an outcome is refused.
    assert not state.heartbeat(execution_id, "a", cut_off.attempt).holds
    stale = state.complete(
        execution_id, "a", '{"result": "stale"}', NodeStatus.SUCCEEDED, attempt=cut_off.attempt
    )
    assert stale is Completion.DUPLICATE
    failed = state.fail(execution_id, "a", {"code": "X"}, attempt=cut_off.attempt)
    assert failed is False
    assert node_events(stack, execution_id, "a") == [EventType.NODE_STARTED] * 2

    assert state.heartbeat(execution_id, "a", healthy.attempt).holds
    fresh = state.complete(
        execution_id, "a", '{"result": "fresh"}', NodeStatus.SUCCEEDED, attempt=healthy.attempt
    )
    assert fresh is Completion.RECORDED
    assert output(stack, execution_id, "a") == {"result": "fresh"}
    assert node_events(stack, execution_id, "a") == [
        EventType.NODE_STARTED,
        EventType.NODE_STARTED,
        EventType.NODE_SUCCEEDED,
    ]
    record = state.snapshot(execution_id, []).nodes["a"]
    assert (record.status, record.attempts, record.worker) == (
        NodeStatus.SUCCEEDED,
        2,
        "healthy@h",
    )


def backdate(stack: Stack, execution_id: str, by_s: float = 3600) -> None:
    """Make the execution look idle for `by_s` seconds (its last progress that long ago)."""
    score = stack.client.zscore(keys.LIVE_EXECUTIONS, execution_id)
    assert score is not None, "the execution is not in the live index"
    stack.client.zadd(keys.LIVE_EXECUTIONS, {execution_id: score - by_s * 1000})


def run_node(state: RedisStateStore, execution_id: str, key: str, status: NodeStatus) -> Completion:
    """Take the node and store its outcome, as a worker does, without finalizing."""
    load = state.load(execution_id, key, "gone@h")
    assert load is not None and not load.busy
    if status is NodeStatus.FAILED:
        error = {"code": "BOOM", "message": "it failed", "nodeId": key}
        assert state.fail(execution_id, key, error, attempt=load.attempt)
        return Completion.RECORDED
    body = json.dumps({"result": f"{key} done"})
    return state.complete(execution_id, key, body, status, attempt=load.attempt)


def test_the_reconciler_finalizes_what_a_dead_worker_left_unfinalized(
    stack: Stack, state: RedisStateStore
) -> None:
    # The worker stored the last node's outcome and died before finalizing.
    done = create(state, chain(("a", delay(0)), ("b", delay(0))))
    assert run_node(state, done, "a", NodeStatus.SUCCEEDED) is Completion.RECORDED
    assert run_node(state, done, "b", NodeStatus.SUCCEEDED) is Completion.LAST
    # The worker stored a node's failure and died before it ended the execution.
    failed = create(state, chain(("a", delay(0)), ("b", delay(0))))
    run_node(state, failed, "a", NodeStatus.FAILED)
    for execution_id in (done, failed):
        assert state.result(execution_id) is None
        backdate(stack, execution_id)

    # A stall of an hour: only the finalize repair, not a stall re-dispatch, can act now.
    checker = Reconciler(stack.dispatcher(), state, stall_s=3600)
    now = state.clock_ms()
    assert {i: checker.check(i, now) for i in (done, failed)} == {
        done: Repair.FINALIZED,
        failed: Repair.FINALIZED,
    }
    finished = json.loads(state.result(done) or "null")
    assert (finished["status"], finished["data"]) == ("succeeded", {"b": {"result": "b done"}})
    broken = json.loads(state.result(failed) or "null")
    assert broken["status"] == "failed"
    assert (broken["error"]["code"], broken["error"]["nodeId"]) == ("BOOM", "a")
    assert ExecutionStatus(state.snapshot(done, []).meta["status"]) is ExecutionStatus.SUCCEEDED
    assert {i: checker.check(i, state.clock_ms()) for i in (done, failed)} == {
        done: Repair.FORGOTTEN,
        failed: Repair.FORGOTTEN,
    }


def stream_types(stack: Stack, execution_id: str) -> list[str]:
    """The types of the execution's events in the recorder's stream, in order."""
    entries: Any = stack.client.xrange(keys.EVENTS_STREAM)
    events = [Event.model_validate_json(fields[b"event"]) for _, fields in entries]
    return [event.type for event in events if event.execution_id == execution_id]


def test_cancel_publishes_the_terminal_event_once(stack: Stack, state: RedisStateStore) -> None:
    execution_id = create(state, chain(("a", delay(0)), ("b", delay(0))))
    assert run_node(state, execution_id, "a", NodeStatus.SUCCEEDED) is Completion.RECORDED
    running = state.load(execution_id, "b", "busy@h")
    assert running is not None and not running.busy

    control = Control(stack.dispatcher())
    assert control.cancel(execution_id) is ControlOutcome.DONE
    assert control.cancel(execution_id) is ControlOutcome.CONFLICT  # over: nothing more to end
    late = state.complete(
        execution_id, "b", '{"result": "late"}', NodeStatus.SUCCEEDED, attempt=running.attempt
    )
    assert late is Completion.DUPLICATE  # the running attempt was fenced off by the cancel

    logged = [
        Event.model_validate_json(text)
        for text in stack.client.lrange(keys.events_log(execution_id), 0, -1)
    ]
    assert [event.type for event in logged][-1] == EventType.EXECUTION_CANCELLED
    assert [event.seq for event in logged] == list(range(1, len(logged) + 1))
    assert stream_types(stack, execution_id) == [event.type for event in logged]
    assert stream_types(stack, execution_id).count(EventType.EXECUTION_CANCELLED) == 1
    result = json.loads(state.result(execution_id) or "null")
    assert (result["status"], result["error"]["code"]) == ("cancelled", "CANCELLED")
    nodes = state.snapshot(execution_id, []).nodes
    assert (nodes["a"].status, nodes["b"].status) == (NodeStatus.SUCCEEDED, NodeStatus.CANCELLED)
