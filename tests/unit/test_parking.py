"""Parked waits in run_node over the in-memory stores (docs/waits.md): a wait-for-signal node
parks, takes its signal's payload or times out; a long delay parks; the reconciler leaves a
parked execution alone."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from celery import Celery

from conductor.compiler import compile_plan
from conductor.dispatch import Dispatcher
from conductor.model.loader import blueprint_from_data
from conductor.reconciler import Reconciler
from conductor.validation import validate
from nodes.base import NodeEnvironment
from nodes.registry import NodeRegistry, builtin_node_types
from storage.blobs import MemoryBlobStore
from storage.memory_state import MemoryStateStore
from storage.state import ExecutionStatus
from workers.run_node import Outcome, run_node
from workers.stores import Stores

EXECUTION_ID = "exec-park"


def start(nodes: list[dict[str, Any]]) -> Stores:
    """The execution of `nodes` (no edges), created in memory."""
    blueprint = blueprint_from_data({"id": "p", "name": "P", "nodes": nodes, "edges": []})
    stores = Stores(state=MemoryStateStore(), blobs=MemoryBlobStore())
    stores.state.create(compile_plan(blueprint, EXECUTION_ID, {}))
    return stores


def wait_node(**parameters: Any) -> dict[str, Any]:
    return {"id": "w", "type": "wait-for-signal", "parameters": {"name": "go", **parameters}}


def run(stores: Stores, key: str = "w", park_delay_ms: int = 5000) -> Outcome:
    registry = NodeRegistry(builtin_node_types())
    environment = NodeEnvironment(park_delay_ms=park_delay_ms)
    return run_node(EXECUTION_ID, key, stores, registry, environment=environment).outcome


def result(stores: Stores) -> dict[str, Any]:
    text = stores.state.result(EXECUTION_ID)
    assert text is not None, "the execution is not over"
    found: dict[str, Any] = json.loads(text)
    return found


def test_a_wait_parks_and_its_signal_becomes_the_output() -> None:
    stores = start([wait_node()])
    assert run(stores) is Outcome.PARKED
    assert stores.state.result(EXECUTION_ID) is None
    receipt = stores.state.signal(EXECUTION_ID, "go", '{"ok": true}', max_pending=10)
    assert receipt.woken == ("w",)
    assert run(stores) is Outcome.SUCCEEDED
    assert result(stores)["data"] == {
        "w": {"result": {"ok": True}, "signal": "go", "timedOut": False}
    }


def test_the_timeout_fails_the_node_naming_its_signal() -> None:
    stores = start([wait_node(timeout=1)])
    time.sleep(0.005)
    assert run(stores) is Outcome.PARKED  # the wait starts when the node first parks
    time.sleep(0.005)
    assert run(stores) is Outcome.FAILED
    error = result(stores)["error"]
    assert error["code"] == "TIMEOUT" and error["nodeId"] == "w"
    assert "no signal 'go' came within 1 ms" in error["message"]


def test_on_timeout_continue_succeeds_with_the_default_result() -> None:
    stores = start([wait_node(timeout=1, onTimeout="continue", defaultResult={"approved": False})])
    run(stores)
    time.sleep(0.005)
    assert run(stores) is Outcome.SUCCEEDED
    output = result(stores)["data"]["w"]
    assert output == {"result": {"approved": False}, "signal": "go", "timedOut": True}


def test_a_delay_longer_than_the_threshold_parks() -> None:
    stores = start(
        [
            {"id": "short", "type": "delay", "parameters": {"ms": 10}},
            {"id": "long", "type": "delay", "parameters": {"ms": 30}},
        ]
    )
    assert run(stores, "short", park_delay_ms=20) is Outcome.SUCCEEDED  # slept through
    assert run(stores, "long", park_delay_ms=20) is Outcome.PARKED
    assert stores.state.parked(EXECUTION_ID) == {"long": ""}
    time.sleep(0.04)
    assert run(stores, "long", park_delay_ms=20) is Outcome.SUCCEEDED
    assert result(stores)["data"]["long"]["waited_ms"] == 30


def test_the_reconciler_leaves_a_parked_execution_alone() -> None:
    stores = start([wait_node()])
    run(stores)
    state = stores.state
    assert isinstance(state, MemoryStateStore)
    state.touch_live(EXECUTION_ID, state.clock_ms() - 3_600_000)  # idle for an hour
    app = Celery("parking-test", broker="memory://")
    dispatcher = Dispatcher(app, stores, NodeRegistry(builtin_node_types()))
    reconciler = Reconciler(dispatcher, state, stall_s=1)
    for _ in range(5):  # a stalled one would be re-sent 3 times, then failed
        assert reconciler.run_once() == {}
    snapshot = state.snapshot(EXECUTION_ID, [])
    assert snapshot.execution is not None
    assert snapshot.execution.status is ExecutionStatus.RUNNING
    assert state.last_progress_ms(EXECUTION_ID) is None  # a signal or its wake-up sends it


@pytest.mark.parametrize("name", ["", "a b", "x" * 101])
def test_a_signal_name_must_be_plain(name: str) -> None:
    blueprint = blueprint_from_data(
        {"id": "p", "name": "P", "nodes": [wait_node(name=name)], "edges": []}
    )
    problems = validate(blueprint, NodeRegistry(builtin_node_types()))
    assert any(p.path == "nodes[0].parameters.name" for p in problems), problems
