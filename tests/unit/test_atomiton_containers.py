"""Atomiton compatibility of loop, parallel and group: parameters (names, defaults, ranges, no
JSON-string forms), the bodyless nodes' logic, and the planner's container plumbing. The same
through a real worker: tests/e2e/test_atomiton_containers.py."""

from __future__ import annotations

import dataclasses
import json
import re
import threading
import time
from typing import Any

import pytest
from pydantic import ValidationError

from conductor.compiler import compile_plan
from conductor.model.loader import load_blueprint_text
from conductor.model.plan import Wire
from conductor.validation import find_warnings, validate
from nodes.base import NodeContext
from nodes.containers import ContainerRun, iso_timestamp
from nodes.errors import NodeError
from nodes.group import GroupNode, GroupParameters, group_failure
from nodes.javascript import evaluate_expression as evaluate
from nodes.js_condition import run_while
from nodes.loop import LoopNode, LoopParameters
from nodes.operations import OperationLimits, run_operations
from nodes.parallel import ParallelNode, ParallelParameters
from nodes.registry import default_registry
from workers.expansion import expand_items, item_outcomes

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def test_timestamps_are_atomitons() -> None:
    assert iso_timestamp(1_500) == "1970-01-01T00:00:01.500Z"
    assert ISO.match(iso_timestamp())


def context(data: Any = None, **inputs: Any) -> NodeContext:
    """A context with main input `data` and input ports `inputs`."""
    return NodeContext(
        execution_id="exec-1",
        node_id="node",
        inputs=inputs,
        data=data,
        deadline=time.monotonic() + 10,
    )


def field_error(model: type[Any], parameters: dict[str, Any]) -> str:
    """The first validation error's field path."""
    with pytest.raises(ValidationError) as caught:
        model.model_validate(parameters)
    return ".".join(map(str, caught.value.errors()[0]["loc"]))


def one_node(node: dict[str, Any]) -> str:
    return json.dumps({"id": "bp", "name": "bp", "nodes": [node], "edges": []})


# --- parameters ------------------------------------------------------------------------------

DEFINITION_DEFAULTS = [
    (
        "loop",
        {
            "loopType": "forEach", "batchSize": 1, "maxIterations": 1000, "delay": 0,
            "continueOnError": True, "startValue": 0, "endValue": 10, "stepSize": 1,
            "times": 10, "parallel": False, "concurrency": 5, "enabled": True,
            "timeout": 30000, "retries": 1,
        },
    ),
    ("loop", {"loopType": "while", "condition": "iteration < 3", "collectResults": False}),
    ("loop", {"loopType": "times", "count": 2.5, "array": [1, 2]}),
    (
        "parallel",
        {
            "concurrency": 5, "strategy": "allSettled", "operationTimeout": 30000,
            "globalTimeout": 120000, "failFast": False, "maintainOrder": True,
        },
    ),
    ("group", {"timeout": 30000, "retries": 1, "parallel": False, "enabled": True}),
    ("group", {"timeout": 1000, "retries": 0, "nodes": [{"id": "x", "type": "delay"}]}),
]  # fmt: skip


@pytest.mark.parametrize(("node_type", "parameters"), DEFINITION_DEFAULTS)
def test_atomiton_parameters_validate_without_warnings(
    node_type: str, parameters: dict[str, Any]
) -> None:
    loaded = load_blueprint_text(one_node({"id": "n", "type": node_type, "parameters": parameters}))
    assert validate(loaded, default_registry(), strict=True) == []
    assert find_warnings(loaded, default_registry()) == []


@pytest.mark.parametrize(
    ("model", "parameters", "field"),
    [
        (LoopParameters, {"count": 0}, "count"),
        (LoopParameters, {"times": 10_001}, "times"),
        (LoopParameters, {"array": "[1, 2]"}, "array"),  # no JSON-string form
        (LoopParameters, {"loopType": "until"}, "loopType"),
        (LoopParameters, {"condition": 5}, "condition"),
        (LoopParameters, {"collectResults": "maybe"}, "collectResults"),
        (LoopParameters, {"maxIterations": 0}, "maxIterations"),
        (ParallelParameters, {"operationTimeout": 999}, "operationTimeout"),
        (ParallelParameters, {"operationTimeout": 300_001}, "operationTimeout"),
        (ParallelParameters, {"globalTimeout": 4999}, "globalTimeout"),
        (ParallelParameters, {"globalTimeout": 600_001}, "globalTimeout"),
        (ParallelParameters, {"concurrency": 51}, "concurrency"),
        (ParallelParameters, {"concurrency": 0}, "concurrency"),
        (ParallelParameters, {"strategy": "any"}, "strategy"),
        (ParallelParameters, {"failFast": "maybe"}, "failFast"),
        (ParallelParameters, {"operations": "[1]"}, "operations"),
        (GroupParameters, {"timeout": 999}, "timeout"),
        (GroupParameters, {"timeout": 300_001}, "timeout"),
        (GroupParameters, {"retries": 11}, "retries"),
        (GroupParameters, {"retries": -1}, "retries"),
        (GroupParameters, {"parallel": "maybe"}, "parallel"),
    ],
)
def test_bad_values_name_their_field(
    model: type[Any], parameters: dict[str, Any], field: str
) -> None:
    assert field_error(model, parameters) == field


def test_validation_names_the_path_of_a_bad_value() -> None:
    loaded = load_blueprint_text(
        one_node({"id": "n", "type": "parallel", "parameters": {"globalTimeout": 10}})
    )
    (problem,) = validate(loaded, default_registry())
    assert problem.path == "nodes[0].parameters.globalTimeout"


def test_defaults_are_atomitons_and_aliases_are_conductors() -> None:
    loop = LoopParameters()
    assert (loop.loopType, loop.array, loop.count, loop.condition, loop.collectResults) == (
        "forEach",
        None,
        10,
        None,
        True,
    )
    assert LoopParameters.model_validate({"items": [1]}).array == [1]
    assert LoopParameters.model_validate({"times": 3}).count == 3
    par = ParallelParameters()
    assert (par.strategy, par.concurrency, par.operationTimeout, par.globalTimeout) == (
        "allSettled",
        5,
        30_000,
        120_000,
    )
    assert (par.failFast, par.maintainOrder) == (False, True)
    assert ParallelParameters.model_validate({"preserveOrder": False}).maintainOrder is False
    group = GroupParameters()
    assert (group.timeout, group.retries, group.parallel) == (30_000, 1, False)
    assert {"array", "items", "count", "times"} <= LoopNode.parameter_names()


# --- loop without a body ---------------------------------------------------------------------


def loop(data: Any = None, inputs: dict[str, Any] | None = None, **params: Any) -> dict[str, Any]:
    output = LoopNode().run(LoopParameters.model_validate(params), context(data, **(inputs or {})))
    assert output["result"]["iterationCount"] == output["iterationCount"]
    return dict(output["result"])


def test_for_each_records_and_counts() -> None:
    out = loop(array=["a", "b"])
    assert [(r["index"], r["item"], r["processed"]) for r in out["results"]] == [
        (0, "a", True),
        (1, "b", True),
    ]
    assert out["iterationCount"] == 2 and out["completed"] and not out["stopped"]
    assert loop(array=[])["iterationCount"] == 0  # Atomiton's off-by-one says 1


def test_for_each_reads_its_items_where_atomiton_and_conductor_do() -> None:
    assert loop(inputs={"array": [1]})["iterationCount"] == 1  # the input's `array`
    assert [r["item"] for r in loop(array=[9], inputs={"array": [1]})["results"]] == [9]
    assert loop([4, 5, 6])["iterationCount"] == 3  # the main input, a list
    assert loop({"xs": [1, 2]}, iterateOver="xs")["iterationCount"] == 2
    listed = {"result": ["a.png"], "files": ["a.png"]}  # file-system list: port holds `files`
    assert loop(["a.png"], {"default": listed}, iterateOver="files")["iterationCount"] == 1
    assert loop({"other": 1})["iterationCount"] == 0  # nothing to iterate over
    with pytest.raises(NodeError, match="needs a list of items, got str"):
        loop("text")
    with pytest.raises(NodeError, match="no 'xs' to iterate over"):
        loop({"ys": []}, iterateOver="xs")


def test_the_cap_truncates_and_says_stopped() -> None:
    out = loop(array=list(range(5)), maxIterations=3)
    assert [r["item"] for r in out["results"]] == [0, 1, 2]
    assert (out["completed"], out["stopped"], out["success"]) == (False, True, True)
    times = loop(loopType="times", count=10_000)
    assert times["iterationCount"] == 1000 and times["stopped"]


def test_times_truncates_a_fraction_and_collect_results_false_empties() -> None:
    out = loop(loopType="times", count=2.9)
    assert [r["iteration"] for r in out["results"]] == [0, 1]
    quiet = loop(loopType="times", count=3, collectResults=False)
    assert (quiet["results"], quiet["iterationCount"]) == ([], 3)


def test_for_range_is_conductors_own() -> None:
    out = loop(loopType="forRange", startValue=2, endValue=8, stepSize=3)
    assert [r["item"] for r in out["results"]] == [2, 5]
    with pytest.raises(NodeError, match="stepSize"):
        loop(loopType="forRange", stepSize=0)


def test_while_semantics() -> None:
    assert [
        r["iteration"] for r in loop(loopType="while", condition="iteration < 2")["results"]
    ] == [
        0,
        1,
        2,
    ]
    assert loop(loopType="while", condition="")["iterationCount"] == 0
    assert loop(loopType="while", condition="Math.max(iteration, 1) < 2")["iterationCount"] == 3
    with pytest.raises(NodeError, match=r"^Invalid condition: 'nope' is not defined$"):
        loop(loopType="while", condition="nope")


def test_run_while_gives_last_result_and_stops_on_a_later_error() -> None:
    run = run_while("lastResult === null || lastResult.condition && iteration < 1", 100, 5)
    assert [r["iteration"] for r in run.records] == [0, 1]
    assert all(ISO.match(r["timestamp"]) for r in run.records)
    late = run_while("iteration < 1 || lastResult.missing.deeper", 100, 5)
    assert len(late.records) == 2
    assert late.errors[0]["iteration"] == 1
    assert late.errors[0]["error"].startswith("Invalid condition: ")
    assert not late.capped and run_while("true", 7, 5).capped


def test_a_condition_that_never_ends_hits_the_time_limit() -> None:
    with pytest.raises(NodeError) as caught:
        run_while("(() => { for (;;) {} })()", 10, 0.2)
    assert caught.value.code == "TIMEOUT"


def test_evaluate_binds_variables_and_returns_json() -> None:
    assert evaluate("({sum: a + b.c, i: index})", {"a": 1, "b": {"c": 2}, "index": 4}, 10) == {
        "sum": 3,
        "i": 4,
    }


# --- loop with a body: collecting ------------------------------------------------------------


def test_collect_gives_records_with_results_items_and_errors() -> None:
    failure = {"result": None, "$error": {"code": "X", "message": "bad", "nodeId": "l#1/b"}}
    inputs = {"$item/0": {"item": "a"}, "$item/1": {"item": "b"}, "0/b": {"result": 1}}
    ran = dataclasses.replace(
        context(**inputs), container=ContainerRun(0), finished_ms={"0/b": 1_000, "1/b": 2_000}
    )
    out = LoopNode().collect(LoopParameters(), ran, [{"result": 1}, failure])
    assert out["result"] == [1, None]
    first, second = out["results"]
    assert (first["item"], first["result"], first["processed"]) == ("a", 1, True)
    assert first["timestamp"] == "1970-01-01T00:00:01.000Z"
    assert (second["processed"], second["error"]) == (False, "bad")
    assert out["errors"] == [{"index": 1, "iteration": 1, "error": failure["$error"]}]
    assert out["duration"] > 0 and out["iterationCount"] == 2 and out["success"] is False


def test_a_while_body_loop_reports_a_later_condition_error() -> None:
    params = LoopParameters(loopType="while", condition="iteration < 1 || nope")
    assert LoopNode().items(params, context()) == [0, 1]
    ran = dataclasses.replace(context(), container=ContainerRun(0))
    out = LoopNode().collect(params, ran, [{"result": "a"}, {"result": "b"}])
    assert out["result"] == ["a", "b"]
    assert out["errors"] == [{"iteration": 1, "error": "Invalid condition: 'nope' is not defined"}]
    assert out["success"] is False


def test_items_for_a_body_refuse_to_cut_work_short() -> None:
    node = LoopNode()
    with pytest.raises(NodeError, match="exceed maxIterations=2"):
        node.items(LoopParameters(array=[1, 2, 3], maxIterations=2), context())
    with pytest.raises(NodeError, match="still held after maxIterations=4"):
        node.items(LoopParameters(loopType="while", condition="true", maxIterations=4), context())
    params = LoopParameters(loopType="while", condition="iteration < 2")
    assert node.items(params, context()) == [0, 1, 2]
    assert node.items(LoopParameters(loopType="times", count=3), context()) == [0, 1, 2]


def test_expansion_wires_each_item_to_the_collecting_loop() -> None:
    plan = compile_plan(
        load_blueprint_text(
            "id: b\nname: b\nnodes:\n  - id: l\n    type: loop\n"
            "    nodes: [{id: g, type: group, nodes: [{id: x, type: delay}]}]\n"
        ),
        "e",
        {},
    )
    expansion = expand_items(plan.nodes["l"], ["p", "q"])
    ports = [wire.port for wire in expansion.loop.wires]
    assert ports == ["0/g", "$item/0", "1/g", "$item/1"]
    assert expansion.loop.entered_ms is not None
    group = next(node for node in expansion.nodes if node.key == "l#1/g")
    assert group.entered_ms == expansion.loop.entered_ms  # a container in an item
    assert Wire(source="l#1", port="$entry/0") in group.wires
    outcomes = item_outcomes(expansion.loop, {"0/g": {"result": 1}, "1/g": {"result": 2}})
    assert outcomes == [{"result": 1}, {"result": 2}]


# --- parallel --------------------------------------------------------------------------------


def limits(**changes: Any) -> OperationLimits:
    base = OperationLimits(
        strategy="allSettled",
        concurrency=5,
        operation_timeout_s=5,
        global_timeout_s=10,
        fail_fast=False,
        maintain_order=True,
        node_deadline=time.monotonic() + 30,
    )
    return dataclasses.replace(base, **changes)


def ops(operations: list[Any], stop: threading.Event | None = None, **changes: Any) -> Any:
    return run_operations(operations, limits(**changes), stop or threading.Event())


def test_operations_pass_values_evaluate_expressions_and_wait() -> None:
    out = ops([7, {"expression": "input * index", "input": 3}, {"delay": 20, "value": "v"}])
    assert [r["result"] for r in out["results"]] == [7, 3, "v"]
    assert out["results"][0]["input"] == 7
    assert (out["completed"], out["failed"], out["success"]) == (3, 0, True)
    assert ops([]) == {"results": [], "completed": 0, "failed": 0, "duration": 0, "success": True}


def test_operation_timeout_and_bad_operations_fail_one_operation() -> None:
    out = ops(
        [
            {"delay": 2000},
            {"delay": -1},
            {"expression": 5},
            {"expression": "(() => {for(;;){}})()"},
        ],
        operation_timeout_s=0.2,
    )
    errors = [r["error"] for r in out["results"]]
    assert errors[0] == "Operation 0 timed out after 200ms"
    assert errors[1] == "operations[1].delay: must be a number of ms, at least 0"
    assert errors[2] == "operations[2].expression: must be a string"
    assert errors[3] == "Operation 3 timed out after 200ms"
    assert out["failed"] == 4 and out["success"] is False


def test_global_timeout_and_the_nodes_own_timeout_fail_the_node() -> None:
    with pytest.raises(NodeError, match=r"^Global timeout exceeded \(300ms\)$"):
        ops([{"delay": 5000}, 1], global_timeout_s=0.3)
    with pytest.raises(NodeError, match="past its timeout") as caught:
        ops([{"delay": 5000}], node_deadline=time.monotonic() + 0.3)
    assert caught.value.code == "TIMEOUT"


def test_fail_fast_all_and_order() -> None:
    fast = ops([{"expression": "nope"}, "never"], concurrency=1, fail_fast=True)
    assert len(fast["results"]) == 1 and fast["failed"] == 1
    with pytest.raises(NodeError, match=r"^One or more operations failed$"):
        ops([1, {"expression": "nope"}], strategy="all")
    assert ops([1, 2], strategy="all")["success"] is True
    late_first = [{"delay": 300, "value": "slow"}, {"delay": 0, "value": "fast"}]
    assert [r["result"] for r in ops(late_first, maintain_order=False)["results"]] == [
        "fast",
        "slow",
    ]
    assert [r["result"] for r in ops(late_first)["results"]] == ["slow", "fast"]


def test_race_keeps_the_first_to_succeed() -> None:
    won = ops(
        [{"delay": 800, "value": "slow"}, {"expression": "nope"}, {"delay": 50, "value": "fast"}],
        strategy="race",
        concurrency=1,  # ignored by a race
    )
    assert [r["result"] for r in won["results"]] == ["fast"]
    assert won["duration"] < 700
    with pytest.raises(NodeError, match="every operation of the race failed"):
        ops([{"expression": "nope"}], strategy="race")


def test_concurrency_bounds_operations_running_at_once() -> None:
    one = ops([{"delay": 150}] * 3, concurrency=1)
    assert one["duration"] >= 450
    three = ops([{"delay": 150}] * 3, concurrency=3)
    assert three["duration"] < 400


def test_a_cancelled_execution_stops_waiting_operations() -> None:
    stop = threading.Event()
    threading.Timer(0.1, stop.set).start()
    started = time.monotonic()
    out = ops([{"delay": 5000}], stop)
    assert time.monotonic() - started < 2
    assert "cancelled" in out["results"][0]["error"]


def parallel(data: Any = None, inputs: dict[str, Any] | None = None, **params: Any) -> Any:
    node_context = context(data, **(inputs or {}))
    return ParallelNode().run(ParallelParameters.model_validate(params), node_context)


def test_parallel_reads_operations_from_the_parameter_then_the_input() -> None:
    assert parallel(operations=[1], inputs={"operations": [2]})["result"][0]["result"] == 1
    assert parallel(inputs={"operations": [2]})["result"][0]["result"] == 2
    assert parallel()["results"] == []
    with pytest.raises(NodeError, match=r"^operations: must be a list, got dict$"):
        parallel(inputs={"operations": {"a": 1}})


def test_parallel_children_shape_order_and_explicit_global_timeout() -> None:
    children = {
        "slow": {"result": "s"},
        "bad": {"result": None, "$error": {"message": "no"}},
        "fast": {"result": "f"},
        "$entry/0": {"result": "upstream"},
    }
    ran = dataclasses.replace(
        context(**children),
        container=ContainerRun(entered_ms=int(time.time() * 1000) - 50, children=3),
        finished_ms={"slow": 30, "bad": 20, "fast": 10},
    )
    out = ParallelNode().run(ParallelParameters(maintainOrder=False), ran)
    assert out["results"] == ["f", {"error": "no"}, "s"]
    assert (out["completed"], out["failed"], out["success"]) == (2, 1, False)
    assert out["duration"] >= 50
    assert [entry["id"] for entry in out["result"]] == ["fast", "bad", "slow"]
    race = ParallelNode().run(ParallelParameters(strategy="race"), ran)
    assert (race["results"], race["winner"], race["completed"]) == (["f"], "fast", 1)
    late = ParallelParameters.model_validate({"globalTimeout": 5000})
    old = dataclasses.replace(ran, container=ContainerRun(entered_ms=0, children=3))
    with pytest.raises(NodeError, match=r"Global timeout exceeded \(5000ms\)"):
        ParallelNode().run(late, old)
    assert ParallelNode().run(ParallelParameters(), old)["failed"] == 1  # default: not checked


# --- group -----------------------------------------------------------------------------------


def test_a_group_without_children_echoes_its_input_map() -> None:
    out = GroupNode().run(GroupParameters(), context({"x": 1}, trigger={"result": {"x": 1}}))
    assert out["result"] == {"trigger": {"result": {"x": 1}}}
    meta = out["metadata"]
    assert (meta["nodeId"], meta["nodeType"], meta["childNodesExecuted"]) == ("node", "group", 0)
    assert meta["executedAt"].endswith("Z") and 0 <= meta["totalExecutionTime"] < 1000


def test_a_group_with_children_ignores_its_reserved_ports() -> None:
    ran = dataclasses.replace(
        context(only={"result": 5}, **{"$entry/0": {"result": "up"}}),
        container=ContainerRun(entered_ms=int(time.time() * 1000) - 20, children=4),
    )
    out = GroupNode().run(GroupParameters(), ran)
    assert out["result"] == 5
    assert out["metadata"]["childNodesExecuted"] == 4
    assert out["metadata"]["totalExecutionTime"] >= 20


def test_a_groups_settled_failure_names_the_failed_node() -> None:
    error = {"code": "EXECUTION_FAILED", "message": "boom", "nodeId": "outer/g/c"}
    keys = group_failure("g", error, ContainerRun(entered_ms=0, children=2))
    assert keys["error"] == "Child node c failed: boom"
    assert keys["metadata"]["failedNode"] == "outer/g/c"
    assert keys["metadata"]["nodeId"] == "g" and keys["metadata"]["childNodesExecuted"] == 2


# --- planning --------------------------------------------------------------------------------

PLANNED = """
id: b
name: b
nodes:
  - {id: up, type: delay}
  - {id: lone, type: group}
  - {id: ops, type: parallel}
  - id: g
    type: group
    nodes: [{id: a, type: delay}, {id: b, type: delay}]
    edges: [{source: a, target: b}]
  - id: p
    type: parallel
    parameters: {operationTimeout: 2000}
    nodes:
      - {id: long, type: delay, parameters: {timeout: 60000}}
      - {id: short, type: delay, parameters: {timeout: 1500}}
      - {id: plain, type: delay}
      - {id: inner, type: group, nodes: [{id: deep, type: delay, parameters: {timeout: 60000}}]}
  - id: q
    type: parallel
    nodes: [{id: long, type: delay, parameters: {timeout: 60000}}]
edges: [{source: up, target: g}, {source: up, target: p}]
"""


def test_bodyless_containers_run_their_own_node() -> None:
    plan = compile_plan(load_blueprint_text(PLANNED), "e", {})
    for key in ("lone", "ops"):
        assert plan.nodes[key].enabled and plan.nodes[key].collects == []


def test_containers_wait_for_their_sinks_and_see_their_upstream() -> None:
    plan = compile_plan(load_blueprint_text(PLANNED), "e", {})
    group = plan.nodes["g"]
    assert group.wires == [Wire(source="g/b", port="b"), Wire(source="up", port="$entry/0")]
    assert group.children == 2 and plan.nodes["p"].children == 4
    assert plan.nodes["g/a"].wires == [Wire(source="up")]


def test_an_explicit_operation_timeout_caps_leaf_children() -> None:
    plan = compile_plan(load_blueprint_text(PLANNED), "e", {})
    limits_ms = {key: node.timeout_ms() for key, node in plan.nodes.items()}
    assert (limits_ms["p/long"], limits_ms["p/short"], limits_ms["p/plain"]) == (2000, 1500, 2000)
    assert limits_ms["p/inner/deep"] == 60000  # a grandchild is not an operation
    assert limits_ms["q/long"] == 60000  # no operationTimeout given: nothing capped
