"""Re-dispatching from stored state runs only the nodes that have not finished."""

from __future__ import annotations

import time
from collections.abc import Callable

import redis

from conductor.control import Control, ControlOutcome
from conductor.dispatch import Dispatcher
from conductor.embedded import WorkerProcess
from conductor.model.loader import load_blueprint_text
from conductor.model.settings import Settings
from conductor.waiting import wait_for_result
from nodes.registry import default_registry
from storage.state import NodeStatus
from tests.e2e.fault_stack import wait_consumed
from workers.app import create_app
from workers.tasks import make_stores

LINEAR = """
id: pausable
name: Pausable
nodes:
  - {id: a, type: delay, parameters: {ms: 1000}}
  - {id: b, type: transform, parameters: {transformFunction: "item => 'b'"}}
  - {id: c, type: transform, parameters: {transformFunction: "item => item + 'c'"}}
edges: [{source: a, target: b}, {source: b, target: c}]
"""


def test_redispatch_runs_only_unfinished_nodes(
    settings: Settings, worker: WorkerProcess, redis_client: redis.Redis
) -> None:
    stores = make_stores(settings)
    dispatcher = Dispatcher(create_app(settings), stores, default_registry())
    control = Control(dispatcher)
    plan = dispatcher.submit(load_blueprint_text(LINEAR))
    _wait_for(lambda: stores.state.snapshot(plan.execution_id, []).nodes["a"].status == "running")
    assert control.pause(plan.execution_id) is ControlOutcome.DONE  # no new node starts
    _wait_for(lambda: stores.state.snapshot(plan.execution_id, []).nodes["a"].status == "succeeded")
    # b's message, sent after a, is delivered meanwhile and must not start b.
    wait_consumed(redis_client, execution_id=plan.execution_id)
    nodes = stores.state.snapshot(plan.execution_id, []).nodes
    assert nodes["b"].status == nodes["c"].status == NodeStatus.PENDING
    stored = stores.state.stored_plan(plan.execution_id)
    assert stored is not None and stored.done == {"a"}  # what resume's re-dispatch leaves out

    assert control.resume(plan.execution_id) is ControlOutcome.DONE  # re-dispatches b and c
    result = wait_for_result(redis_client, stores, plan.execution_id, timeout_s=30)
    assert result["status"] == "succeeded", result["error"]
    assert result["data"]["c"]["result"] == "bc"
    assert {step["nodeId"]: step["attempts"] for step in result["trace"]} == {
        "a": 1,
        "b": 1,
        "c": 1,
    }


def _wait_for(condition: Callable[[], bool], timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)
