"""The state store's contract: every test runs on MemoryStateStore and on RedisStateStore (a
private redis-server), so the twin and the real store agree on every state transition, fencing
rule, idempotency rule, control outcome and event payload."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from conductor.compiler import compile_plan
from conductor.model.loader import load_blueprint_text
from storage.event_data import check_data
from storage.events import Event, EventType
from storage.state import (
    Completion,
    ExecutionExists,
    ExecutionStatus,
    NodeStatus,
    StateChange,
    StateStore,
)
from tests.contract.conftest import STATE_LEASE_MS
from workers.expansion import expand_items

CHAIN = "id: c\nname: C\nnodes: [{id: a, type: delay}, {id: b, type: delay}]\n"
CHAIN += "edges: [{source: a, target: b}]\n"
PAIR = "id: p\nname: P\nnodes: [{id: a, type: delay}, {id: b, type: delay}]\n"
ERROR = {"code": "NODE_FAILED", "message": "no", "nodeId": "a"}
LIVE = frozenset({ExecutionStatus.QUEUED, ExecutionStatus.RUNNING})


def create(state: StateStore, text: str = CHAIN) -> str:
    """A new execution of Blueprint YAML; its id."""
    plan = compile_plan(load_blueprint_text(text), f"contract-{uuid.uuid4()}", {})
    state.create(plan)
    return plan.execution_id


def events(state: StateStore, execution_id: str) -> list[Event]:
    found = state.events(execution_id)
    assert found is not None
    return found


def kinds(state: StateStore, execution_id: str) -> list[tuple[str, str | None]]:
    """Each event's type and node, in order."""
    return [(e.type.value, e.node_id) for e in events(state, execution_id)]


def status_of(state: StateStore, execution_id: str, key: str) -> NodeStatus:
    return state.snapshot(execution_id, []).nodes[key].status


def started(state: StateStore, execution_id: str, key: str) -> int:
    """Load `key` (which must be taken); its attempt."""
    load = state.load(execution_id, key, "w1")
    assert load is not None and not load.busy
    return load.attempt


def wait_lapsed(state: StateStore, execution_id: str, key: str) -> None:
    """Until the node's lease has lapsed on the store's clock."""
    deadline = time.monotonic() + 10
    while not state.snapshot(execution_id, []).nodes[key].lease_lapsed(state.clock_ms()):
        assert time.monotonic() < deadline, "the lease never lapsed"
        time.sleep(STATE_LEASE_MS / 10_000)


def test_create_stores_a_queued_execution_once(state_store: StateStore) -> None:
    execution_id = create(state_store)
    meta = state_store.snapshot(execution_id, []).execution
    assert meta is not None and meta.status is ExecutionStatus.QUEUED
    assert (meta.total, meta.blueprint_id, meta.sinks) == (2, "c", ["b"])
    assert kinds(state_store, execution_id) == [("execution.queued", None)]
    stored = state_store.stored_plan(execution_id)
    assert stored is not None and set(stored.plan.nodes) == {"a", "b"} and not stored.done
    plan = compile_plan(load_blueprint_text(CHAIN), execution_id, {})
    with pytest.raises(ExecutionExists):
        state_store.create(plan)


def test_an_unknown_execution_reads_as_absent(state_store: StateStore) -> None:
    assert state_store.snapshot("nope", []).execution is None
    assert state_store.stored_plan("nope") is None
    assert state_store.events("nope") is None
    assert state_store.load("nope", "a", "w1") is None
    assert state_store.heartbeat("nope", "a", 1).status is None


def test_load_marks_running_and_hands_over_upstream_outputs(state_store: StateStore) -> None:
    execution_id = create(state_store)
    assert started(state_store, execution_id, "a") == 1
    assert state_store.snapshot(execution_id, []).execution.status is ExecutionStatus.RUNNING  # type: ignore[union-attr]
    assert state_store.complete(execution_id, "a", '{"v": 1}', NodeStatus.SUCCEEDED, attempt=1)
    load = state_store.load(execution_id, "b", "w1")
    assert load is not None and load.upstream == {"a": '{"v": 1}'} and load.tries == 1
    assert state_store.load(execution_id, "zz", "w1") is None


def test_finished_nodes_reads_status_plan_size_and_outcomes(state_store: StateStore) -> None:
    assert state_store.finished_nodes("nope") is None
    execution_id = create(state_store)
    finished = state_store.finished_nodes(execution_id)
    assert finished is not None
    assert (finished.status, finished.planned, finished.done) == (
        ExecutionStatus.QUEUED,
        2,
        frozenset(),
    )
    attempt = started(state_store, execution_id, "a")
    state_store.complete(execution_id, "a", "{}", NodeStatus.SUCCEEDED, attempt=attempt)
    started(state_store, execution_id, "b")  # running: no outcome yet
    finished = state_store.finished_nodes(execution_id)
    assert finished is not None and finished.status is ExecutionStatus.RUNNING
    assert finished.done == {"a"}
    assert state_store.finish(execution_id, ExecutionStatus.FAILED, '{"error": null}')
    assert state_store.reopen(execution_id, ["a"]) is StateChange.DONE
    finished = state_store.finished_nodes(execution_id)
    assert finished is not None and finished.done == frozenset()


def test_a_held_node_is_busy_for_another_delivery(state_store: StateStore) -> None:
    execution_id = create(state_store)
    started(state_store, execution_id, "a")
    again = state_store.load(execution_id, "a", "w2")
    assert again is not None and again.busy and again.attempt == 1
    assert [k for k in kinds(state_store, execution_id) if k[0] == "node.started"] == [
        ("node.started", "a")
    ]


def test_a_second_outcome_for_a_node_is_refused(state_store: StateStore) -> None:
    execution_id = create(state_store, PAIR)
    first = state_store.complete(execution_id, "a", '{"r": "first"}', NodeStatus.SUCCEEDED)
    assert first is Completion.RECORDED
    again = state_store.complete(execution_id, "a", '{"r": "second"}', NodeStatus.SUCCEEDED)
    assert again is Completion.DUPLICATE
    assert state_store.snapshot(execution_id, ["a"]).sink_outputs == {"a": '{"r": "first"}'}
    assert kinds(state_store, execution_id).count(("node.succeeded", "a")) == 1


def test_the_last_outcome_says_so(state_store: StateStore) -> None:
    execution_id = create(state_store, PAIR)
    assert (
        state_store.complete(execution_id, "a", "{}", NodeStatus.SUCCEEDED) is Completion.RECORDED
    )
    assert state_store.complete(execution_id, "b", "{}", NodeStatus.SKIPPED) is Completion.LAST


def test_a_skipped_node_says_why_in_its_event(state_store: StateStore) -> None:
    execution_id = create(state_store, PAIR)
    reason = "branch 'true' of 'check' not taken (took 'false')"
    state_store.complete(execution_id, "a", "{}", NodeStatus.SKIPPED, reason=reason)
    (skipped,) = [e for e in events(state_store, execution_id) if e.type is EventType.NODE_SKIPPED]
    check_data(skipped)
    assert skipped.data["reason"] == reason
    assert status_of(state_store, execution_id, "a") is NodeStatus.SKIPPED


def test_a_stale_attempt_is_fenced_off_once_another_took_over(state_store: StateStore) -> None:
    execution_id = create(state_store)
    assert started(state_store, execution_id, "a") == 1
    wait_lapsed(state_store, execution_id, "a")
    assert started(state_store, execution_id, "a") == 2  # takes over the lapsed lease
    assert not state_store.heartbeat(execution_id, "a", 1).holds
    assert state_store.heartbeat(execution_id, "a", 2).holds
    stale = state_store.complete(execution_id, "a", '{"old": 1}', NodeStatus.SUCCEEDED, attempt=1)
    assert stale is Completion.DUPLICATE
    assert not state_store.fail(execution_id, "a", ERROR, attempt=1)
    assert not state_store.retry_later(execution_id, "a", ERROR, 1.0, attempt=1)
    fresh = state_store.complete(execution_id, "a", '{"new": 2}', NodeStatus.SUCCEEDED, attempt=2)
    assert fresh is Completion.RECORDED


def test_a_failure_is_recorded_once(state_store: StateStore) -> None:
    execution_id = create(state_store)
    attempt = started(state_store, execution_id, "a")
    assert state_store.fail(execution_id, "a", ERROR, attempt=attempt)
    assert not state_store.fail(execution_id, "a", ERROR, attempt=attempt)
    record = state_store.snapshot(execution_id, []).nodes["a"]
    assert record.status is NodeStatus.FAILED and record.error == ERROR
    assert events(state_store, execution_id)[-1].data == {"error": ERROR, "settled": False}


def test_a_retried_attempt_goes_back_to_pending_and_counts(state_store: StateStore) -> None:
    execution_id = create(state_store)
    attempt = started(state_store, execution_id, "a")
    assert state_store.retry_later(execution_id, "a", ERROR, 1.5, attempt=attempt)
    assert status_of(state_store, execution_id, "a") is NodeStatus.PENDING
    assert events(state_store, execution_id)[-1].data == {
        "error": ERROR,
        "retry_in_s": 1.5,
        "attempt": 1,
    }
    load = state_store.load(execution_id, "a", "w1")
    assert load is not None and (load.attempt, load.tries) == (2, 2)


def test_cancel_ends_live_nodes_and_fences_their_attempts(state_store: StateStore) -> None:
    execution_id = create(state_store)
    attempt = started(state_store, execution_id, "a")
    assert state_store.cancel(execution_id) is StateChange.DONE
    nodes = state_store.snapshot(execution_id, []).nodes
    assert {k: r.status for k, r in nodes.items()} == {
        "a": NodeStatus.CANCELLED,
        "b": NodeStatus.CANCELLED,
    }
    late = state_store.complete(execution_id, "a", "{}", NodeStatus.SUCCEEDED, attempt=attempt)
    assert late is Completion.DUPLICATE
    assert not state_store.finish(execution_id, ExecutionStatus.FAILED, '{"x": 1}')
    assert state_store.finish(execution_id, ExecutionStatus.CANCELLED, '{"x": 1}')
    assert state_store.cancel(execution_id) is StateChange.CONFLICT
    assert state_store.cancel("nope") is StateChange.NOT_FOUND


def test_cancel_works_on_an_execution_whose_nodes_all_finished(state_store: StateStore) -> None:
    # stuck: the last outcome was stored, but whoever stored it never ended the execution
    execution_id = create(state_store, PAIR)
    state_store.complete(execution_id, "a", "{}", NodeStatus.SUCCEEDED)
    assert state_store.complete(execution_id, "b", "{}", NodeStatus.SUCCEEDED) is Completion.LAST
    assert state_store.cancel(execution_id) is StateChange.DONE
    assert state_store.finish(execution_id, ExecutionStatus.CANCELLED, '{"error": null}')


def test_pause_and_resume_move_only_from_their_states(state_store: StateStore) -> None:
    execution_id = create(state_store)
    paused = ExecutionStatus.PAUSED
    assert state_store.transition(execution_id, LIVE, paused, EventType.EXECUTION_PAUSED) is (
        StateChange.DONE
    )
    load = state_store.load(execution_id, "a", "w1")
    assert load is not None and load.node_status is NodeStatus.PENDING  # not taken
    again = state_store.transition(execution_id, LIVE, paused, EventType.EXECUTION_PAUSED)
    assert again is StateChange.CONFLICT
    resumed = state_store.transition(
        execution_id, frozenset({paused}), ExecutionStatus.RUNNING, EventType.EXECUTION_RESUMED
    )
    assert resumed is StateChange.DONE
    unknown = state_store.transition("nope", LIVE, paused, EventType.EXECUTION_PAUSED)
    assert unknown is StateChange.NOT_FOUND


def test_retry_reopens_failed_and_cancelled_nodes(state_store: StateStore) -> None:
    execution_id = create(state_store)
    attempt = started(state_store, execution_id, "a")
    assert state_store.reopen(execution_id, []) is StateChange.CONFLICT  # running
    state_store.fail(execution_id, "a", ERROR, attempt=attempt)
    assert state_store.finish(execution_id, ExecutionStatus.FAILED, '{"error": null}')
    assert state_store.reopen(execution_id, ["b"]) is StateChange.DONE
    assert state_store.result(execution_id) is None
    assert events(state_store, execution_id)[-1].data == {
        "status": "running",
        "retry": True,
        "nodes": ["a", "b"],
    }
    load = state_store.load(execution_id, "a", "w1")
    assert load is not None and (load.attempt, load.tries) == (2, 1)  # tokens keep growing
    assert state_store.reopen("nope", []) is StateChange.NOT_FOUND


def test_finish_is_set_once(state_store: StateStore) -> None:
    execution_id = create(state_store, PAIR)
    assert state_store.finish(execution_id, ExecutionStatus.SUCCEEDED, '{"n": 1}')
    assert not state_store.finish(execution_id, ExecutionStatus.FAILED, '{"n": 2}')
    assert state_store.result(execution_id) == '{"n": 1}'
    assert state_store.snapshot(execution_id, []).execution.status is ExecutionStatus.SUCCEEDED  # type: ignore[union-attr]


def test_no_event_follows_the_terminal_one(state_store: StateStore) -> None:
    execution_id = create(state_store, PAIR)
    a = started(state_store, execution_id, "a")
    b = started(state_store, execution_id, "b")
    state_store.fail(execution_id, "a", ERROR, attempt=a)
    assert state_store.finish(execution_id, ExecutionStatus.FAILED, '{"error": null}')
    assert not state_store.retry_later(execution_id, "b", ERROR, 1.0, attempt=b)
    assert not state_store.fail(execution_id, "b", ERROR, attempt=b)
    late = state_store.complete(execution_id, "b", "{}", NodeStatus.SUCCEEDED, attempt=b)
    assert late is Completion.DUPLICATE
    state_store.progress(execution_id, "b", 0.5, "half")
    assert events(state_store, execution_id)[-1].type is EventType.EXECUTION_FAILED


def test_a_failure_drains_every_node_without_an_outcome(state_store: StateStore) -> None:
    text = "id: f\nname: F\nnodes: [{id: a, type: delay}, {id: b, type: delay}, "
    text += "{id: c, type: delay}]\nedges: [{source: b, target: c}]\n"
    execution_id = create(state_store, text)
    a = started(state_store, execution_id, "a")
    b = started(state_store, execution_id, "b")  # a sibling in flight
    state_store.fail(execution_id, "a", ERROR, attempt=a)
    assert state_store.finish(execution_id, ExecutionStatus.FAILED, '{"error": null}')
    nodes = state_store.snapshot(execution_id, []).nodes
    assert {k: r.status.value for k, r in nodes.items()} == {
        "a": "failed",
        "b": "cancelled",
        "c": "cancelled",
    }
    assert not state_store.heartbeat(execution_id, "b", b).holds  # told to stop
    terminal = events(state_store, execution_id)[-1]
    assert (terminal.type, terminal.data["cancelled"]) == (EventType.EXECUTION_FAILED, ["b", "c"])
    assert state_store.reopen(execution_id, []) is StateChange.DONE
    assert events(state_store, execution_id)[-1].data["nodes"] == ["a", "b", "c"]


def test_expand_is_fenced_by_the_loops_attempt(state_store: StateStore) -> None:
    loop = "id: l\nname: L\nnodes:\n  - id: each\n    type: loop\n"
    loop += "    parameters: {items: [1, 2]}\n    nodes: [{id: w, type: delay}]\n"
    execution_id = create(state_store, loop)
    stored = state_store.stored_plan(execution_id)
    assert stored is not None
    spec = stored.plan.nodes["each"]
    attempt = started(state_store, execution_id, "each")
    expansion = expand_items(spec, [1, 2])
    assert not state_store.expand(execution_id, expansion, attempt=attempt + 1)
    assert state_store.expand(execution_id, expansion, attempt=attempt)
    meta = state_store.snapshot(execution_id, []).execution
    assert meta is not None and meta.total == len(stored.plan.nodes) + len(expansion.nodes)
    finished = state_store.finished_nodes(execution_id)
    assert finished is not None and finished.planned == meta.total


def test_event_payloads_have_one_shape_on_both_stores(state_store: StateStore) -> None:
    execution_id = create(state_store, PAIR)
    a = started(state_store, execution_id, "a")
    state_store.progress(execution_id, "a", 0.5, "half")
    state_store.retry_later(execution_id, "a", ERROR, 2.0, attempt=a)
    a = started(state_store, execution_id, "a")
    state_store.complete(execution_id, "a", "{}", NodeStatus.FAILED, ERROR, attempt=a)
    b = started(state_store, execution_id, "b")
    state_store.complete(execution_id, "b", "{}", NodeStatus.SUCCEEDED, cached=True, attempt=b)
    state_store.finish(execution_id, ExecutionStatus.SUCCEEDED, '{"error": null, "duration_ms": 3}')
    found = events(state_store, execution_id)
    for event in found:
        check_data(event)
    assert [e.seq for e in found] == list(range(1, len(found) + 1))
    assert [_stable(e) for e in found] == EXPECTED


def _stable(event: Event) -> tuple[str, str | None, dict[str, Any]]:
    """An event without what differs run to run (ids, times, the worker's name)."""
    volatile = {"duration_ms", "inputs"} if event.node_id else {"inputs"}
    data = {k: v for k, v in event.data.items() if k not in volatile}
    return event.type.value, event.node_id, data


EXPECTED = [
    (
        "execution.queued",
        None,
        {"blueprint_id": "p", "blueprint_name": "P", "blueprint_version": None, "nodes": 2},
    ),
    ("execution.started", None, {}),
    ("node.started", "a", {"attempt": 1, "worker": "w1", "type": "delay"}),
    ("node.progress", "a", {"progress": 0.5, "message": "half"}),
    ("node.retrying", "a", {"error": ERROR, "retry_in_s": 2.0, "attempt": 1}),
    ("node.started", "a", {"attempt": 2, "worker": "w1", "type": "delay"}),
    ("node.failed", "a", {"error": ERROR, "settled": True}),
    ("node.started", "b", {"attempt": 1, "worker": "w1", "type": "delay"}),
    ("node.cached", "b", {}),
    (
        "execution.succeeded",
        None,
        {
            "status": "succeeded",
            "error": None,
            "duration_ms": 3,
            "result": {"error": None, "duration_ms": 3},
            "cancelled": [],
        },
    ),
]


def test_the_live_index_follows_progress(state_store: StateStore) -> None:
    execution_id = create(state_store)
    assert state_store.last_progress_ms(execution_id) is not None
    now = state_store.clock_ms()
    assert execution_id in state_store.live_executions(now + 1, limit=100_000)
    state_store.touch_live(execution_id, now + 60_000)
    assert execution_id not in state_store.live_executions(now + 1, limit=100_000)
    state_store.forget_live(execution_id)
    assert state_store.last_progress_ms(execution_id) is None


def test_a_lost_attempt_counts_once_and_redispatches_count_up(state_store: StateStore) -> None:
    execution_id = create(state_store)
    assert state_store.note_lapsed(execution_id, {"a": 1}) == 1
    assert state_store.note_lapsed(execution_id, {"a": 1}) == 0
    assert state_store.note_lapsed(execution_id, {"a": 2, "b": 1}) == 2
    meta = state_store.snapshot(execution_id, []).execution
    assert meta is not None and meta.lapsed == {"a": 2, "b": 1}
    assert [state_store.count_redispatch(execution_id) for _ in range(2)] == [1, 2]


def test_a_lock_is_held_by_one_and_released_only_by_its_holder(state_store: StateStore) -> None:
    name = f"contract-lock-{uuid.uuid4()}"
    token = state_store.acquire_lock(name, 10_000)
    assert token is not None
    assert state_store.acquire_lock(name, 10_000) is None
    assert not state_store.release_lock(name, "not-the-token")
    assert state_store.release_lock(name, token)
    assert state_store.acquire_lock(name, 10_000) is not None


def test_an_expired_lock_is_not_released_by_its_old_holder(state_store: StateStore) -> None:
    name = f"contract-lock-{uuid.uuid4()}"
    old = state_store.acquire_lock(name, 50)
    assert old is not None
    deadline = time.monotonic() + 10
    while (new := state_store.acquire_lock(name, 10_000)) is None:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert not state_store.release_lock(name, old)
    assert state_store.acquire_lock(name, 10_000) is None  # still the new holder's
    assert state_store.release_lock(name, new)


def test_an_outcome_carries_its_runs_profile_and_a_retry_clears_it(
    state_store: StateStore,
) -> None:
    execution_id = create(state_store, PAIR)
    a = started(state_store, execution_id, "a")
    b = started(state_store, execution_id, "b")
    profile = {"queue_wait_ms": 12, "cpu_ms": 340, "peak_rss_bytes": 1 << 27, "depends_on": ["x"]}
    state_store.complete(execution_id, "a", "{}", NodeStatus.SUCCEEDED, attempt=a, profile=profile)
    succeeded = events(state_store, execution_id)[-1]
    assert succeeded.data["profile"] == profile
    check_data(succeeded)
    failed_profile = {**profile, "cpu_ms": 5}
    state_store.fail(execution_id, "b", ERROR, attempt=b, profile=failed_profile)
    failed = events(state_store, execution_id)[-1]
    assert (failed.type, failed.data["profile"]) == (EventType.NODE_FAILED, failed_profile)
    check_data(failed)
    nodes = state_store.snapshot(execution_id, []).nodes
    assert (nodes["a"].profile, nodes["b"].profile) == (profile, failed_profile)
    assert state_store.finish(execution_id, ExecutionStatus.FAILED, '{"error": null}')
    assert state_store.reopen(execution_id, []) is StateChange.DONE
    assert state_store.snapshot(execution_id, []).nodes["b"].profile is None  # a new run's


def test_an_outcome_without_a_profile_has_none(state_store: StateStore) -> None:
    execution_id = create(state_store, PAIR)
    a = started(state_store, execution_id, "a")
    state_store.complete(execution_id, "a", "{}", NodeStatus.SUCCEEDED, attempt=a)
    assert "profile" not in events(state_store, execution_id)[-1].data
    assert state_store.snapshot(execution_id, []).nodes["a"].profile is None
