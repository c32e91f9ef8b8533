"""A child execution's end reaches its parent's `blueprint` node (docs/children.md), on
MemoryStateStore and RedisStateStore: finishing the child keeps a hand-off the node takes when
it parks, brings a parked node's wake-up forward, and a retry of the parent drops old ones."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
import redis

from conductor.compiler import compile_plan
from conductor.embedded import RedisServer
from conductor.model.children import child_id, child_signal
from conductor.model.loader import load_blueprint_text
from conductor.model.waits import Wait
from storage import keys
from storage.event_data import check_data
from storage.memory_state import MemoryStateStore
from storage.redis_state import RedisStateStore
from storage.state import ExecutionStatus, StateStore
from storage.waits import Parking, WakeUp

PARENT = "id: p\nname: P\nnodes: [{id: run, type: blueprint, parameters: {blueprintId: c}}]\n"
CHILD = "id: c\nname: C\nnodes: [{id: x, type: delay, parameters: {ms: 1}}]\n"
HOUR_MS = 3_600_000


@pytest.fixture(params=["memory", "redis"])
def state(request: pytest.FixtureRequest) -> Iterator[StateStore]:
    """Each store; Redis on database 1, where no worker claims the wake-ups made here."""
    if request.param == "memory":
        yield MemoryStateStore()
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    client = redis.Redis.from_url(server.url.rsplit("/", 1)[0] + "/1")
    client.delete(keys.WAKEUPS, keys.WAKEUP_NUDGES)
    yield RedisStateStore(client)
    client.close()


def family(state: StateStore) -> tuple[str, str]:
    """A parent and its child (created as a worker's ChildLauncher does)."""
    parent = compile_plan(load_blueprint_text(PARENT), f"contract-{uuid.uuid4()}", {})
    state.create(parent)
    child = compile_plan(load_blueprint_text(CHILD), child_id(parent.execution_id, "run"), {})
    update = {"parent_id": parent.execution_id, "parent_node": "run"}
    state.create(child.model_copy(update=update))
    return parent.execution_id, child.execution_id


def park(state: StateStore, parent: str) -> Parking:
    load = state.load(parent, "run", "w1")
    assert load is not None
    return state.park(
        parent, "run", Wait(HOUR_MS, child_signal("run")), attempt=load.attempt
    ).parking


def test_the_child_is_linked_to_its_parent(state: StateStore) -> None:
    parent, child = family(state)
    meta = state.snapshot(child, []).execution
    assert meta is not None and (meta.parent_id, meta.parent_node) == (parent, "run")
    queued = (state.events(child) or [])[0]
    assert (queued.data["parent_id"], queued.data["parent_node"]) == (parent, "run")
    check_data(queued)
    stored = state.stored_plan(child)
    assert stored is not None and stored.plan.parent_id == parent


def test_the_end_of_the_child_wakes_its_parked_node(state: StateStore) -> None:
    parent, child = family(state)
    assert park(state, parent) is Parking.PARKED
    state.claim_wakeups(100, 60_000)  # others' due wake-ups out of the way
    assert not state.await_wakeup(0.05)
    assert state.finish(child, ExecutionStatus.FAILED, json.dumps({"id": child}))
    assert state.await_wakeup(5)  # a wake-up thread is told at once
    assert WakeUp(parent, "run") in state.claim_wakeups(100, 60_000)  # due now
    load = state.load(parent, "run", "w1")
    assert load is not None
    reply = state.park(parent, "run", Wait(HOUR_MS, child_signal("run")), attempt=load.attempt)
    assert reply.parking is Parking.ARRIVED and reply.arrival is not None
    assert reply.arrival.payload == {"executionId": child, "status": "failed"}


def test_a_child_that_ends_before_its_node_parks_is_kept(state: StateStore) -> None:
    parent, child = family(state)
    assert state.finish(child, ExecutionStatus.SUCCEEDED, json.dumps({"id": child}))
    assert park(state, parent) is Parking.ARRIVED


def test_a_retry_of_the_parent_drops_an_old_hand_off(state: StateStore) -> None:
    parent, child = family(state)
    assert state.finish(child, ExecutionStatus.FAILED, json.dumps({"id": child}))
    state.load(parent, "run", "w1")
    state.fail(parent, "run", {"code": "EXECUTION_FAILED", "message": "child failed"})
    assert state.finish(parent, ExecutionStatus.FAILED, json.dumps({"id": parent}))
    assert state.reopen(parent, ["run"]).value == "done"
    assert park(state, parent) is Parking.PARKED  # waits for the retried child's end


def test_a_parent_that_is_over_takes_nothing(state: StateStore) -> None:
    parent, child = family(state)
    state.cancel(parent)
    assert state.finish(parent, ExecutionStatus.CANCELLED, json.dumps({"id": parent}))
    assert state.finish(child, ExecutionStatus.CANCELLED, json.dumps({"id": child}))
    assert state.parked(parent) == {}
