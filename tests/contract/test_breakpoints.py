"""The debugging part of the state store's contract, on both stores: a breakpoint pauses the
execution before the node (once), a resume runs it, and a step runs only the nodes it chose,
holding any other until they have finished and then pausing before it."""

from __future__ import annotations

import uuid

import pytest

from conductor.compiler import compile_plan
from conductor.control import ready_keys
from conductor.model.breakpoints import InvalidBreakpoints, with_breakpoints
from conductor.model.loader import load_blueprint_text
from storage.event_data import check_data
from storage.events import EventType
from storage.state import ExecutionStatus, NodeStatus, StateChange, StateStore
from workers.expansion import expand_items

# a -> b -> c, and d beside them
GRAPH = """
id: dbg
name: Debug
nodes:
  - {id: a, type: delay}
  - {id: b, type: delay}
  - {id: c, type: delay}
  - {id: d, type: delay}
edges: [{source: a, target: b}, {source: b, target: c}]
"""
LOOP = """
id: dbg-loop
name: Debug loop
nodes:
  - id: each
    type: loop
    nodes: [{id: double, type: delay}]
"""
RUNNING = frozenset({ExecutionStatus.PAUSED})
LIVE = frozenset({ExecutionStatus.QUEUED, ExecutionStatus.RUNNING})


def create(state: StateStore, breakpoints: list[str], text: str = GRAPH) -> str:
    plan = compile_plan(load_blueprint_text(text), f"contract-{uuid.uuid4()}", {})
    state.create(with_breakpoints(plan, breakpoints))
    return plan.execution_id


def status(state: StateStore, execution_id: str) -> ExecutionStatus:
    meta = state.snapshot(execution_id, []).execution
    assert meta is not None
    return meta.status


def succeed(state: StateStore, execution_id: str, key: str) -> None:
    load = state.load(execution_id, key, "w1")
    assert load is not None and load.execution_status in LIVE and not load.busy, key
    state.complete(execution_id, key, "{}", NodeStatus.SUCCEEDED, attempt=load.attempt)


def pauses(state: StateStore, execution_id: str) -> list[dict[str, object]]:
    found = state.events(execution_id) or []
    return [e.data for e in found if e.type is EventType.EXECUTION_PAUSED]


def resume(state: StateStore, execution_id: str) -> None:
    moved = state.transition(
        execution_id, RUNNING, ExecutionStatus.RUNNING, EventType.EXECUTION_RESUMED
    )
    assert moved is StateChange.DONE


def test_a_breakpoint_pauses_before_its_node_once(state_store: StateStore) -> None:
    execution_id = create(state_store, ["b"])
    succeed(state_store, execution_id, "a")
    held = state_store.load(execution_id, "b", "w1")
    assert held is not None and held.execution_status is ExecutionStatus.PAUSED
    assert held.attempt == 0  # not started: no attempt taken
    assert status(state_store, execution_id) is ExecutionStatus.PAUSED
    assert state_store.snapshot(execution_id, []).nodes["b"].status is NodeStatus.PENDING
    assert pauses(state_store, execution_id) == [
        {"status": "paused", "breakpoint": "b", "step": False}
    ]
    for event in state_store.events(execution_id) or []:
        check_data(event)
    assert state_store.last_progress_ms(execution_id) is None  # a pause leaves the live index
    resume(state_store, execution_id)
    succeed(state_store, execution_id, "b")  # passed once: it runs now
    succeed(state_store, execution_id, "c")
    assert len(pauses(state_store, execution_id)) == 1


def test_nodes_without_breakpoints_run_as_before(state_store: StateStore) -> None:
    execution_id = create(state_store, ["c"])
    for key in ("a", "d", "b"):
        succeed(state_store, execution_id, key)
    assert pauses(state_store, execution_id) == []


def test_a_breakpoint_matches_every_item_of_a_loop_body(state_store: StateStore) -> None:
    execution_id = create(state_store, ["each/double"], LOOP)
    load = state_store.load(execution_id, "each", "w1")
    assert load is not None and load.execution_status in LIVE
    stored = state_store.stored_plan(execution_id)
    assert stored is not None
    expansion = expand_items(stored.plan.nodes["each"], [1, 2])
    assert state_store.expand(execution_id, expansion, attempt=load.attempt)
    for index in (0, 1):
        key = f"each#{index}/double"
        held = state_store.load(execution_id, key, "w1")
        assert held is not None and held.execution_status is ExecutionStatus.PAUSED
        resume(state_store, execution_id)
        succeed(state_store, execution_id, key)
    assert [p["breakpoint"] for p in pauses(state_store, execution_id)] == [
        "each#0/double",
        "each#1/double",
    ]


def test_a_step_runs_the_chosen_nodes_and_pauses_before_the_next(
    state_store: StateStore,
) -> None:
    execution_id = create(state_store, ["a"])
    assert state_store.load(execution_id, "a", "w1").execution_status is ExecutionStatus.PAUSED  # type: ignore[union-attr]
    stored = state_store.stored_plan(execution_id)
    assert stored is not None
    chosen = ready_keys(stored.plan, stored.done)
    assert chosen == {"a", "d"}
    assert state_store.step(execution_id, chosen) is StateChange.DONE
    resumed = (state_store.events(execution_id) or [])[-1]
    assert resumed.type is EventType.EXECUTION_RESUMED and resumed.data["step"] == ["a", "d"]
    succeed(state_store, execution_id, "a")
    # b comes up while d (chosen) has not run: it waits, the execution keeps running
    waiting = state_store.load(execution_id, "b", "w1")
    assert waiting is not None and waiting.busy and waiting.attempt == 0
    assert status(state_store, execution_id) is ExecutionStatus.RUNNING
    succeed(state_store, execution_id, "d")
    held = state_store.load(execution_id, "b", "w1")
    assert held is not None and held.execution_status is ExecutionStatus.PAUSED
    assert pauses(state_store, execution_id)[-1] == {
        "status": "paused",
        "breakpoint": "b",
        "step": True,
    }
    resume(state_store, execution_id)  # a resume ends stepping: b and c run
    succeed(state_store, execution_id, "b")
    succeed(state_store, execution_id, "c")


def test_only_a_paused_execution_steps(state_store: StateStore) -> None:
    execution_id = create(state_store, [])
    assert state_store.step(execution_id, {"a"}) is StateChange.CONFLICT
    assert state_store.step("contract-missing", {"a"}) is StateChange.NOT_FOUND


def test_a_breakpoint_naming_no_node_is_refused_by_its_index() -> None:
    plan = compile_plan(load_blueprint_text(GRAPH), "x", {})
    with pytest.raises(InvalidBreakpoints) as refused:
        with_breakpoints(plan, ["a", "nope"])
    assert [p.path for p in refused.value.problems] == ["breakpoints[1]"]
    assert "nope" in refused.value.problems[0].message
