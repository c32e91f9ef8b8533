"""loop, parallel and group answer with Atomiton's parameters and outputs, through a real
worker: one Blueprint holds every case (each node is one), so the file runs in seconds."""

from __future__ import annotations

import re
from typing import Any

import pytest

from conductor.model.settings import Settings
from storage.blobs import unpack
from tests.e2e.conftest import RunBlueprint
from workers.tasks import make_stores

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

INPUTS = {"array": ["x", "y"], "operations": [1, {"expression": "index * 10"}]}

CASES = """
id: atomiton-containers
name: Atomiton containers
nodes:
  # --- loop without a body: Atomiton's records --------------------------------------------
  - {id: fe_param, type: loop, parameters: {array: [a, b, c], batchSize: 1, delay: 0}}
  - {id: fe_items, type: loop, parameters: {items: [1, 2]}}
  - {id: fe_input, type: loop, parameters: {loopType: forEach}}
  - {id: fe_empty, type: loop, parameters: {array: []}}
  - {id: fe_cap, type: loop, parameters: {array: [1, 2, 3], maxIterations: 2}}
  - {id: times_count, type: loop, parameters: {loopType: times, count: 3.7}}
  - {id: times_alias, type: loop, parameters: {loopType: times, times: 2}}
  - {id: while3, type: loop, parameters: {loopType: while, condition: "iteration < 3"}}
  - {id: while_none, type: loop, parameters: {loopType: while}}
  - id: while_last
    type: loop
    parameters: {loopType: while, condition: "lastResult === null || lastResult.iteration < 1"}
  - {id: while_err, type: loop, parameters: {loopType: while, condition: "iteration < 1 || nope"}}
  - {id: while_cap, type: loop, parameters: {loopType: while, condition: "true", maxIterations: 5}}
  - {id: no_collect, type: loop, parameters: {array: [1, 2], collectResults: false}}
  - {id: feeder, type: loop, parameters: {array: [7, 8]}}
  - {id: fe_range, type: loop, parameters: {loopType: forRange, startValue: 1, endValue: 7, stepSize: 3}}
  - {id: fe_port, type: loop}
  # --- loop with a body: the same records, each with the body's result -------------------
  - id: body_each
    type: loop
    parameters: {array: [1, 2, -1]}
    nodes:
      - id: tenfold
        type: transform
        parameters:
          retries: 0
          transformFunction: "x => { if (x < 0) throw new Error('negative'); return x * 10 }"
  - id: body_times
    type: loop
    parameters: {loopType: times, count: 2}
    nodes: [{id: plus, type: transform, parameters: {transformFunction: "x => x + 100"}}]
  - id: body_while
    type: loop
    parameters: {loopType: while, condition: "iteration < 2"}
    nodes: [{id: twice, type: transform, parameters: {transformFunction: "x => x * 2"}}]
  - id: body_quiet
    type: loop
    parameters: {array: [1], collectResults: false}
    nodes: [{id: same, type: transform, parameters: {transformFunction: "x => x"}}]
  - id: body_group
    type: loop
    parameters: {array: [1, 2]}
    nodes:
      - id: g
        type: group
        nodes: [{id: inc, type: transform, parameters: {transformFunction: "x => x + 1"}}]
  # --- parallel without children: its operations ------------------------------------------
  - {id: ops_input, type: parallel}
  - id: ops_param
    type: parallel
    parameters:
      operations: [{expression: "input.a + index", input: {a: 1}}, {delay: 50, value: v}]
  - id: ops_timeout
    type: parallel
    parameters: {operationTimeout: 1000, operations: [{delay: 3000}, ok]}
  - id: ops_unordered
    type: parallel
    parameters:
      maintainOrder: false
      operations: [{delay: 400, value: slow}, {delay: 0, value: fast}]
  - id: ops_preserve
    type: parallel
    parameters:
      preserveOrder: true
      operations: [{delay: 300, value: slow}, {delay: 0, value: fast}]
  - id: ops_race
    type: parallel
    parameters: {strategy: race, operations: [{delay: 600, value: slow}, {delay: 10, value: fast}]}
  - id: ops_failfast
    type: parallel
    parameters: {failFast: true, concurrency: 1, operations: [{expression: "nope"}, never]}
  - id: ops_settled
    type: parallel
    parameters: {concurrency: 1, operations: [{expression: "nope"}, fine]}
  - id: ops_one_lane
    type: parallel
    parameters: {concurrency: 1, operations: [{delay: 250}, {delay: 250}]}
  - id: ops_lanes
    type: parallel
    parameters: {concurrency: 3, operations: [{delay: 300}, {delay: 300}, {delay: 300}]}
  - {id: ops_empty, type: parallel, parameters: {operations: []}}
  - {id: ops_all, type: parallel, parameters: {strategy: all, operations: [1, 2]}}
  - {id: ops_feeder, type: parallel, parameters: {operations: [{expression: "'fed'"}]}}
  - {id: ops_port, type: parallel}
  # --- group ------------------------------------------------------------------------------
  - {id: g_empty, type: group}
  - {id: g_trigger, type: group}
  - id: g_kids
    type: group
    parameters: {parallel: true, timeout: 1000, retries: 0, nodes: []}
    nodes:
      - {id: wait, type: delay, parameters: {ms: 300}}
      - {id: fmt, type: edit-fields, parameters: {values: {done: true}, keepOnlySet: true}}
    edges: [{source: wait, target: fmt}]
  # --- parallel with children -------------------------------------------------------------
  - id: kids
    type: parallel
    parameters: {maintainOrder: false, operationTimeout: 1000}
    nodes:
      - {id: slow, type: delay, parameters: {ms: 400}}
      - {id: fast, type: transform, parameters: {transformFunction: "x => 'fast'"}}
      - {id: capped, type: delay, parameters: {ms: 3000, retries: 0}}
  # failures that end a node settle here, so this one execution holds them too
  - id: settle
    type: parallel
    nodes:
      - {id: all_fails, type: parallel, parameters: {strategy: all, operations: [{expression: "nope"}]}}
      - id: global
        type: parallel
        parameters: {globalTimeout: 5000, operationTimeout: 60000, timeout: 60000, operations: [{delay: 9000}]}
      - {id: while_bad, type: loop, parameters: {loopType: while, condition: "nope +"}}
      - {id: race_none, type: parallel, parameters: {strategy: race, operations: [{expression: "nope"}]}}
      - id: g_fail
        type: group
        nodes:
          - {id: boom, type: transform, parameters: {retries: 0, transformFunction: "x => { throw new Error('boom') }"}}
edges:
  - {source: feeder, target: fe_port, sourceHandle: results, targetHandle: items}
  - {source: ops_feeder, target: ops_port, sourceHandle: results, targetHandle: operations}
  - {source: ops_all, target: g_trigger, targetHandle: trigger}
"""


_RAN: dict[str, Any] = {}  # the one execution, shared by this module's tests


@pytest.fixture
def ran(run_blueprint: RunBlueprint, settings: Settings) -> dict[str, Any]:
    """Every node's output of the one execution of CASES (run by the first test to ask)."""
    if not _RAN:
        result = run_blueprint(CASES, INPUTS, timeout_s=60)
        assert result["status"] == "succeeded", result["error"]
        stores = make_stores(settings)
        snapshot = stores.state.snapshot(result["id"], ["settle/g_fail", "ops_all"])
        inner = {key: unpack(text, stores.blobs) for key, text in snapshot.sink_outputs.items()}
        _RAN.update({**result["data"], **inner})
    return _RAN


def summary(output: dict[str, Any]) -> dict[str, Any]:
    """A bodyless loop's summary, checked to repeat at the top level as Atomiton's does."""
    inner = output["result"]
    for key in ("results", "iterationCount", "errors", "success", "duration"):
        assert output[key] == inner[key], key
    assert "completed" not in output and "stopped" not in output
    assert isinstance(inner["duration"], int) and inner["duration"] >= 0
    return dict(inner)


def test_a_bodyless_for_each_returns_atomitons_records(ran: dict[str, Any]) -> None:
    out = summary(ran["fe_param"])
    assert [(r["index"], r["item"], r["processed"]) for r in out["results"]] == [
        (0, "a", True),
        (1, "b", True),
        (2, "c", True),
    ]
    assert all(ISO.match(r["timestamp"]) for r in out["results"])
    assert set(out["results"][0]) == {"index", "item", "processed", "timestamp"}
    assert (out["iterationCount"], out["errors"], out["success"]) == (3, [], True)
    assert (out["completed"], out["stopped"]) == (True, False)
    assert [r["item"] for r in summary(ran["fe_items"])["results"]] == [1, 2]  # alias `items`
    assert [r["item"] for r in summary(ran["fe_input"])["results"]] == ["x", "y"]  # input array
    assert [r["item"] for r in summary(ran["fe_range"])["results"]] == [1, 4]  # Conductor's
    fed = summary(ran["fe_port"])["results"]  # Atomiton's `items` port is read here
    assert [r["item"]["item"] for r in fed] == [7, 8]


def test_no_iterations_count_zero_and_the_cap_stops_the_loop(ran: dict[str, Any]) -> None:
    empty = summary(ran["fe_empty"])
    assert (empty["results"], empty["iterationCount"]) == ([], 0)  # Atomiton says 1
    assert (empty["completed"], empty["stopped"]) == (True, False)
    capped = summary(ran["fe_cap"])
    assert [r["item"] for r in capped["results"]] == [1, 2]
    assert (capped["completed"], capped["stopped"], capped["success"]) == (False, True, True)
    quiet = summary(ran["no_collect"])
    assert (quiet["results"], quiet["iterationCount"]) == ([], 2)


def test_times_records_iterations(ran: dict[str, Any]) -> None:
    records = summary(ran["times_count"])["results"]
    assert [r["iteration"] for r in records] == [0, 1, 2]  # 3.7 is truncated
    assert set(records[0]) == {"iteration", "timestamp"} and ISO.match(records[0]["timestamp"])
    assert summary(ran["times_alias"])["iterationCount"] == 2


def test_while_evaluates_its_condition_in_javascript(ran: dict[str, Any]) -> None:
    three = summary(ran["while3"])
    assert [r["iteration"] for r in three["results"]] == [0, 1, 2, 3]
    assert all(r["condition"] is True for r in three["results"])
    assert three["iterationCount"] == 4
    none = summary(ran["while_none"])
    assert (none["results"], none["iterationCount"], none["success"]) == ([], 0, True)
    assert summary(ran["while_last"])["iterationCount"] == 2  # lastResult is the record
    failed = summary(ran["while_err"])
    assert failed["iterationCount"] == 2 and failed["success"] is False
    assert failed["errors"] == [
        {"iteration": 1, "error": "Invalid condition: 'nope' is not defined"}
    ]
    assert (failed["completed"], failed["stopped"]) == (False, True)
    capped = summary(ran["while_cap"])
    assert capped["iterationCount"] == 5 and capped["stopped"] is True


def test_a_loop_with_a_body_returns_records_with_the_bodys_results(ran: dict[str, Any]) -> None:
    each = ran["body_each"]
    assert each["result"] == [10, 20, None]
    assert [(r["index"], r["item"], r["processed"], r["result"]) for r in each["results"]] == [
        (0, 1, True, 10),
        (1, 2, True, 20),
        (2, -1, False, None),
    ]
    assert "negative" in each["results"][2]["error"]
    assert all(ISO.match(r["timestamp"]) for r in each["results"])
    (failure,) = each["errors"]
    assert (failure["index"], failure["iteration"]) == (2, 2)
    assert failure["error"]["nodeId"] == "body_each#2/tenfold"
    assert (each["iterationCount"], each["success"]) == (3, False)
    assert isinstance(each["duration"], int) and each["duration"] >= 0
    times = ran["body_times"]
    assert times["result"] == [100, 101]
    assert [(r["iteration"], r["result"]) for r in times["results"]] == [(0, 100), (1, 101)]
    looped = ran["body_while"]
    assert looped["result"] == [0, 2, 4]
    assert [r["condition"] for r in looped["results"]] == [True, True, True]
    grouped = ran["body_group"]  # a group in each item, its children fed by the item
    assert grouped["result"] == [2, 3]
    assert grouped["results"][1]["result"] == 3
    quiet = ran["body_quiet"]
    assert (quiet["result"], quiet["results"], quiet["iterationCount"]) == ([], [], 1)


def operations(output: dict[str, Any]) -> dict[str, Any]:
    """A bodyless parallel's output, checked for Atomiton's keys."""
    assert {"results", "completed", "failed", "duration", "success"} <= set(output)
    assert output["result"] == output["results"]
    assert output["success"] is (output["failed"] == 0)
    return output


def test_parallel_runs_its_operations(ran: dict[str, Any]) -> None:
    given = operations(ran["ops_input"])
    # Operations from the execution's inputs are data: an `expression` there is not run.
    code = {"expression": "index * 10"}
    assert [(r["index"], r["input"], r["result"]) for r in given["results"]] == [
        (0, 1, 1),
        (1, code, code),
    ]
    assert all(ISO.match(r["timestamp"]) for r in given["results"])
    assert (given["completed"], given["failed"]) == (2, 0)
    assert [r["result"] for r in operations(ran["ops_param"])["results"]] == [1, "v"]
    assert operations(ran["ops_empty"]) == {
        "result": [],
        "results": [],
        "completed": 0,
        "failed": 0,
        "duration": 0,
        "success": True,
    }
    assert [r["result"] for r in operations(ran["ops_all"])["results"]] == [1, 2]
    (fed,) = operations(ran["ops_port"])["results"]
    assert fed["input"]["result"] == "fed"  # an edge into port `operations`


def test_operation_timeout_order_and_race(ran: dict[str, Any]) -> None:
    timed = operations(ran["ops_timeout"])
    assert timed["results"][0] == {"error": "Operation 0 timed out after 1000ms"}
    assert timed["results"][1]["result"] == "ok"
    assert (timed["completed"], timed["failed"], timed["success"]) == (1, 1, False)
    unordered = operations(ran["ops_unordered"])["results"]
    assert [r["result"] for r in unordered] == ["fast", "slow"]
    ordered = operations(ran["ops_preserve"])["results"]
    assert [r["result"] for r in ordered] == ["slow", "fast"]
    race = operations(ran["ops_race"])
    assert [r["result"] for r in race["results"]] == ["fast"]
    assert race["duration"] < 600


def test_fail_fast_and_concurrency(ran: dict[str, Any]) -> None:
    fast = operations(ran["ops_failfast"])
    assert [list(r) for r in fast["results"]] == [["error"]]  # `never` did not start
    assert (fast["completed"], fast["failed"]) == (0, 1)
    assert "'nope' is not defined" in fast["results"][0]["error"]
    settled = operations(ran["ops_settled"])
    assert settled["results"][1]["result"] == "fine" and settled["failed"] == 1
    assert operations(ran["ops_one_lane"])["duration"] >= 500
    assert operations(ran["ops_lanes"])["duration"] < 850


def test_failures_that_end_the_node(ran: dict[str, Any]) -> None:
    settle = {entry["id"]: entry for entry in ran["settle"]["settled"]}
    reasons = {key: entry["reason"]["message"] for key, entry in settle.items()}
    assert reasons["all_fails"] == "One or more operations failed"
    assert reasons["global"] == "Global timeout exceeded (5000ms)"
    assert reasons["while_bad"].startswith("Invalid condition: SyntaxError")
    assert reasons["race_none"].startswith("every operation of the race failed")
    assert "boom" in reasons["g_fail"]
    assert ran["settle"]["failed"] == 5 and ran["settle"]["completed"] == 0
    assert {"error": reasons["global"]} in ran["settle"]["results"]


def metadata(output: dict[str, Any], node_id: str, children: int) -> dict[str, Any]:
    """A group's `metadata`, checked for Atomiton's keys."""
    meta = output["metadata"]
    assert ISO.match(meta["executedAt"])
    assert (meta["nodeId"], meta["nodeType"], meta["childNodesExecuted"]) == (
        node_id,
        "group",
        children,
    )
    assert isinstance(meta["totalExecutionTime"], int) and meta["totalExecutionTime"] >= 0
    return dict(meta)


def test_a_group_without_children_returns_its_input_map(ran: dict[str, Any]) -> None:
    assert ran["g_empty"]["result"] == INPUTS  # a source node's input map: the inputs
    assert "failedNode" not in metadata(ran["g_empty"], "g_empty", 0)
    assert ran["g_trigger"]["result"] == {"trigger": ran["ops_all"]}
    metadata(ran["g_trigger"], "g_trigger", 0)


def test_a_group_with_children_adds_metadata(ran: dict[str, Any]) -> None:
    kids = ran["g_kids"]
    assert kids["result"] == {"done": True}
    assert metadata(kids, "g_kids", 2)["totalExecutionTime"] >= 300
    failed = ran["settle/g_fail"]
    assert failed["result"] is None
    assert failed["error"].startswith("Child node boom failed: ")
    assert metadata(failed, "g_fail", 1)["failedNode"] == "settle/g_fail/boom"


def test_parallel_children_in_atomitons_shape(ran: dict[str, Any]) -> None:
    kids = ran["kids"]
    assert kids["results"][:2] == ["fast", INPUTS]  # completion order; a delay passes input
    assert "longer than the node's timeout" in kids["results"][2]["error"]  # capped at 1000 ms
    assert (kids["completed"], kids["failed"], kids["success"]) == (2, 1, False)
    assert kids["duration"] >= 1000
    assert [entry["id"] for entry in kids["result"]] == ["fast", "slow", "capped"]


def test_fail_fast_children_fail_the_execution(run_blueprint: RunBlueprint) -> None:
    result = run_blueprint(
        """
id: fail-fast
name: Fail fast
nodes:
  - id: p
    type: parallel
    parameters: {failFast: true}
    nodes:
      - {id: bad, type: transform, parameters: {retries: 0, transformFunction: "x => { throw new Error('no') }"}}
      - {id: fine, type: delay, parameters: {ms: 0}}
"""
    )
    assert result["status"] == "failed"
    assert result["error"]["nodeId"] == "p/bad"
