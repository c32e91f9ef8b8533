"""Regressions found in review: loops and finalization, resume of a loop, the execution's own
timeout, and the terminal event of a large failed run. (Duplicate outcomes moved to the state
store's contract suite, tests/contract/test_state_store.py.)"""

from __future__ import annotations

import time

import redis

from conductor.control import Control, ControlOutcome
from conductor.dispatch import Dispatcher
from conductor.embedded import WorkerProcess
from conductor.model.loader import load_blueprint_text
from conductor.model.settings import Settings
from conductor.waiting import wait_for_result
from nodes.registry import default_registry
from storage.events import EventType
from tests.e2e.conftest import RunBlueprint
from tests.e2e.test_events import stream_events
from workers.app import create_app
from workers.tasks import make_stores

SLOW_BESIDE_LOOP = """
id: race
name: Race
nodes:
  - {id: slow, type: delay, parameters: {ms: 1200}}
  - id: each
    type: loop
    parameters: {items: [1, 2, 3], concurrency: 1}
    nodes: [{id: wait, type: delay, parameters: {ms: 500}}]
"""


def test_a_node_beside_a_loop_does_not_end_the_execution_early(run_blueprint: RunBlueprint) -> None:
    result = run_blueprint(SLOW_BESIDE_LOOP, timeout_s=30)
    assert result["status"] == "succeeded", result["error"]
    assert result["data"]["each"]["result"] == [1, 2, 3]
    assert all(step["status"] == "succeeded" for step in result["trace"])


def test_pause_and_resume_during_a_loop_collects_it(
    settings: Settings, worker: WorkerProcess, redis_client: redis.Redis
) -> None:
    stores = make_stores(settings)
    dispatcher = Dispatcher(create_app(settings), stores, default_registry())
    blueprint = load_blueprint_text(
        "id: l\nname: L\nnodes:\n  - id: each\n    type: loop\n    parameters: {items: [1, 2, 3], concurrency: 1}\n"
        "    nodes: [{id: wait, type: delay, parameters: {ms: 600}}]\n"
    )
    plan = dispatcher.submit(blueprint)
    deadline = time.monotonic() + 10
    while stores.state.snapshot(plan.execution_id, []).nodes.get("each#0/wait") is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    control = Control(dispatcher)
    assert control.pause(plan.execution_id) is ControlOutcome.DONE
    time.sleep(0.8)
    assert control.resume(plan.execution_id) is ControlOutcome.DONE
    result = wait_for_result(redis_client, stores, plan.execution_id, 30)
    assert result["status"] == "succeeded", result["error"]
    assert result["data"]["each"]["result"] == [1, 2, 3]


def test_the_executions_own_timeout_cuts_a_running_node_short(run_blueprint: RunBlueprint) -> None:
    started = time.monotonic()
    result = run_blueprint(
        "id: t\nname: T\nsettings: {runtime: {timeout: 1000}}\n"
        "nodes: [{id: long, type: delay, parameters: {ms: 4000, retries: 0}}]\n"
    )
    assert result["status"] == "failed"
    assert result["error"]["code"] == "TIMEOUT"
    assert time.monotonic() - started < 3.5


def test_a_large_failed_run_keeps_its_error_in_the_terminal_event(
    run_blueprint: RunBlueprint, redis_client: redis.Redis
) -> None:
    result = run_blueprint(
        "id: big\nname: Big\nnodes:\n"
        "  - {id: make, type: transform, parameters: {transformFunction: \"x => 'x'.repeat(400000)\"}}\n"
        "  - {id: wait, type: delay, parameters: {ms: 300}}\n"
        "  - {id: boom, type: transform, parameters: {transformFunction: \"x => { throw new Error('no') }\"}}\n"
        # `make` (a sink, so in the result) ends before `boom` fails: the result is large
        "edges: [{source: wait, target: boom}]\n"
    )
    assert result["status"] == "failed"
    terminal = stream_events(redis_client, result["id"])[-1]
    assert terminal.type is EventType.EXECUTION_FAILED
    assert terminal.data["error"]["nodeId"] == "boom"
    assert terminal.data["duration_ms"] is not None
