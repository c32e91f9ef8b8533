"""Blueprints run on a real worker process over a real Redis."""

from __future__ import annotations

import os
import time

import psutil
import redis

from conductor.dispatch import Dispatcher
from conductor.embedded import WorkerProcess
from conductor.model.loader import load_blueprint_text
from conductor.model.settings import Settings
from conductor.waiting import wait_for_result
from nodes.registry import default_registry
from storage import keys
from storage.state import NodeStatus
from tests.e2e.conftest import RunBlueprint
from tests.e2e.fault_stack import wait_until
from workers.app import create_app
from workers.tasks import make_stores


def _linear(count: int, node: str = "{type: delay, parameters: {ms: 0}}") -> str:
    nodes = "\n".join(f"  - {{id: n{i}, {node[1:-1]}}}" for i in range(count))
    edges = "\n".join(f"  - {{source: n{i}, target: n{i + 1}}}" for i in range(count - 1))
    return f"id: linear\nname: Linear\nnodes:\n{nodes}\nedges:\n{edges or '  []'}\n"


def test_data_flows_through_a_diamond(run_blueprint: RunBlueprint) -> None:
    result = run_blueprint(
        """
id: diamond
name: Diamond
nodes:
  - {id: start, type: edit-fields, parameters: {values: {n: "{{$input.n}}"}, keepOnlySet: true}}
  - {id: double, type: transform, parameters: {transformFunction: "item => item.n * 2"}}
  - {id: square, type: transform, parameters: {transformFunction: "item => item.n * item.n"}}
  - id: join
    type: edit-fields
    parameters: {values: {sum: "{{$input}}"}, keepOnlySet: true}
edges:
  - {source: start, target: double}
  - {source: start, target: square}
  - {source: double, target: join, targetHandle: parts}
  - {source: square, target: join, targetHandle: parts}
""",
        {"n": 7},
    )
    assert result["status"] == "succeeded", result["error"]
    assert result["data"] == {"join": {"result": {"sum": [14, 49]}, "data": {"sum": [14, 49]}}}
    assert set(result["executedNodes"]) == {"start", "double", "square", "join"}
    assert all(step["worker"].startswith("e2e@") for step in result["trace"])


def test_fan_out_to_forty_and_back(run_blueprint: RunBlueprint) -> None:
    middle = "\n".join(
        f"  - {{id: m{i}, type: transform, parameters: {{transformFunction: 'item => {i}'}}}}"
        for i in range(40)
    )
    edges = "\n".join(
        f"  - {{source: first, target: m{i}}}\n  - {{source: m{i}, target: last, targetHandle: all}}"
        for i in range(40)
    )
    text = (
        "id: fan\nname: Fan\nnodes:\n  - {id: first, type: delay, parameters: {ms: 0}}\n"
        f"{middle}\n  - {{id: last, type: delay, parameters: {{ms: 0}}}}\nedges:\n{edges}\n"
    )
    result = run_blueprint(text)
    assert result["status"] == "succeeded", result["error"]
    assert result["data"]["last"]["result"] == list(range(40))


def test_group_nested_five_deep_runs_in_the_same_execution(run_blueprint: RunBlueprint) -> None:
    inner = "{id: leaf, type: transform, parameters: {transformFunction: 'item => item.x + 1'}}"
    for depth in range(5):
        inner = f"{{id: g{depth}, type: group, nodes: [{inner}]}}"
    result = run_blueprint(f"id: nested\nname: Nested\nnodes: [{inner}]\n", {"x": 41})
    assert result["status"] == "succeeded", result["error"]
    assert result["data"]["g4"]["result"] == 42
    assert "g4/g3/g2/g1/g0/leaf" in result["executedNodes"]


def test_ten_megabyte_output_travels_by_reference(
    run_blueprint: RunBlueprint, redis_client: redis.Redis
) -> None:
    before = int(redis_client.info("memory")["used_memory"])
    result = run_blueprint(
        """
id: big
name: Big
nodes:
  - {id: make, type: transform, parameters: {transformFunction: "item => 'x'.repeat(10485760)"}}
  - {id: size, type: transform, parameters: {transformFunction: "item => item.length"}}
edges: [{source: make, target: size}]
"""
    )
    assert result["status"] == "succeeded", result["error"]
    assert result["data"]["size"]["result"] == 10 * 1024 * 1024
    grown = int(redis_client.info("memory")["used_memory"]) - before
    assert grown < 1024 * 1024, f"Redis grew by {grown} bytes"


def test_node_timeout_is_enforced(run_blueprint: RunBlueprint) -> None:
    started = time.monotonic()
    result = run_blueprint(
        _linear(1, "{type: delay, parameters: {ms: 20000, timeout: 300, retries: 0}}")
    )
    assert result["status"] == "failed"
    assert result["error"]["code"] == "TIMEOUT"
    assert time.monotonic() - started < 10


def test_endless_javascript_is_stopped(run_blueprint: RunBlueprint) -> None:
    node = "{type: transform, parameters: {transformFunction: 'item => { while (true) {} }', timeout: 500, retries: 0}}"
    result = run_blueprint(_linear(1, node))
    assert result["status"] == "failed"
    assert result["error"]["code"] == "TIMEOUT"
    assert result["error"]["nodeId"] == "n0"
    assert "time limit" in result["error"]["message"]


def test_retries_then_fails_with_the_last_error(run_blueprint: RunBlueprint) -> None:
    result = run_blueprint(
        _linear(1, "{type: delay, parameters: {ms: 5000, timeout: 100, retries: 1}}")
    )
    assert result["status"] == "failed"
    (step,) = result["trace"]
    assert step["attempts"] == 2
    assert result["error"]["code"] == "TIMEOUT"


def test_failure_stops_later_nodes(run_blueprint: RunBlueprint) -> None:
    result = run_blueprint(
        """
id: fails
name: Fails
nodes:
  - {id: boom, type: transform, parameters: {transformFunction: "item => { throw new Error('no way') }"}}
  - {id: after, type: delay, parameters: {ms: 0}}
edges: [{source: boom, target: after}]
"""
    )
    assert result["status"] == "failed"
    assert result["success"] is False
    assert result["error"]["nodeId"] == "boom"
    assert "no way" in result["error"]["message"]
    assert result["executedNodes"] == ["boom"]


def test_every_execution_key_expires(
    run_blueprint: RunBlueprint, redis_client: redis.Redis
) -> None:
    result = run_blueprint(_linear(3))
    # signals and waiting exist only for an execution that was sent a signal or parked
    optional = {keys.signals(result["id"]), keys.waiting(result["id"])}
    for key in keys.execution_keys(result["id"]):
        assert redis_client.exists(key) or key in optional, key
        assert redis_client.ttl(key) > 0 or key in optional, key


def test_worker_child_killed_mid_node_is_requeued(
    settings: Settings, worker: WorkerProcess, redis_client: redis.Redis
) -> None:
    assert worker.process is not None
    stores = make_stores(settings)
    dispatcher = Dispatcher(create_app(settings), stores, default_registry())
    text = _linear(1, "{type: delay, parameters: {ms: 2500}}")
    execution_id = dispatcher.submit(load_blueprint_text(text), {}).execution_id

    def running() -> bool:
        nodes = stores.state.snapshot(execution_id, []).nodes.values()
        return any(record.status is NodeStatus.RUNNING for record in nodes)

    wait_until(running, "the node running")
    for child in psutil.Process(worker.process.pid).children():  # the pool's processes
        child.kill()
    result = wait_for_result(redis_client, stores, execution_id, 60)
    assert result["status"] == "succeeded", result["error"]
    (step,) = result["trace"]
    assert step["attempts"] == 2
    os.kill(worker.process.pid, 0)  # the worker itself survives and replaced its children
