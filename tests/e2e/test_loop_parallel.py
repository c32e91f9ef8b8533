"""`loop` runs its body per item across workers; `parallel` settles its children."""

from __future__ import annotations

import itertools
from typing import Any

from tests.e2e.conftest import RunBlueprint

DOUBLE_EACH = """
id: loop
name: Loop
nodes:
  - id: each
    type: loop
    parameters: {concurrency: CONCURRENCY, iterateOver: items}
    nodes:
      - {id: wait, type: delay, parameters: {ms: 300}}
      - {id: double, type: transform, parameters: {transformFunction: "item => item * 2"}}
    edges: [{source: wait, target: double}]
"""


def _intervals(result: dict[str, Any], suffix: str) -> list[tuple[int, int]]:
    return sorted(
        (step["start_offset_ms"], step["start_offset_ms"] + step["duration_ms"])
        for step in result["trace"]
        if step["nodeId"].endswith(suffix)
    )


def _overlap(intervals: list[tuple[int, int]]) -> bool:
    return any(b[0] < a[1] for a, b in itertools.pairwise(intervals))


def test_loop_runs_the_body_per_item_and_keeps_order(run_blueprint: RunBlueprint) -> None:
    result = run_blueprint(DOUBLE_EACH.replace("CONCURRENCY", "2"), {"items": [3, 1, 2, 5]})
    assert result["status"] == "succeeded", result["error"]
    output = result["data"]["each"]
    assert output["result"] == [6, 2, 4, 10]
    assert output["iterationCount"] == 4 and output["errors"] == []
    assert {"each#0/double", "each#3/wait"} <= set(result["executedNodes"])
    assert _overlap(_intervals(result, "/wait")), "two lanes should run items side by side"


def test_loop_concurrency_one_runs_items_one_after_another(run_blueprint: RunBlueprint) -> None:
    result = run_blueprint(DOUBLE_EACH.replace("CONCURRENCY", "1"), {"items": [1, 2, 3]})
    assert result["status"] == "succeeded", result["error"]
    assert result["data"]["each"]["result"] == [2, 4, 6]
    assert not _overlap(_intervals(result, "/wait"))


def test_loop_in_a_multi_node_level_then_joined(run_blueprint: RunBlueprint) -> None:
    result = run_blueprint(
        """
id: mixed
name: Mixed
nodes:
  - {id: start, type: edit-fields, parameters: {values: {xs: [1, 2, 3]}, keepOnlySet: true}}
  - id: each
    type: loop
    parameters: {iterateOver: xs}
    nodes: [{id: sq, type: transform, parameters: {transformFunction: "x => x * x"}}]
  - {id: side, type: transform, parameters: {transformFunction: "item => item.xs.length"}}
  - id: join
    type: edit-fields
    parameters: {values: {squares: "{{$inputs.a.result}}", count: "{{$inputs.b.result}}"}, keepOnlySet: true}
edges:
  - {source: start, target: each}
  - {source: start, target: side}
  - {source: each, target: join, targetHandle: a}
  - {source: side, target: join, targetHandle: b}
"""
    )
    assert result["status"] == "succeeded", result["error"]
    assert result["data"]["join"]["result"] == {"squares": [1, 4, 9], "count": 3}


def test_a_failing_item_is_reported_and_the_rest_go_on(run_blueprint: RunBlueprint) -> None:
    result = run_blueprint(
        """
id: errs
name: Errs
nodes:
  - id: each
    type: loop
    parameters: {iterateOver: items}
    nodes:
      - {id: check, type: transform, parameters: {transformFunction: "x => { if (x < 0) throw new Error('negative ' + x); return x }"}}
      - {id: after, type: transform, parameters: {transformFunction: "x => x + 1"}}
    edges: [{source: check, target: after}]
""",
        {"items": [1, -2, 3]},
    )
    assert result["status"] == "succeeded", result["error"]
    output = result["data"]["each"]
    assert output["result"] == [2, None, 4]
    assert output["success"] is False
    (failure,) = output["errors"]
    assert failure["index"] == 1
    assert "negative -2" in failure["error"]["message"]
    assert failure["error"]["nodeId"] == "each#1/check"


def test_break_on_error_fails_the_execution(run_blueprint: RunBlueprint) -> None:
    result = run_blueprint(
        """
id: breaks
name: Breaks
nodes:
  - id: each
    type: loop
    parameters: {breakOnError: true, iterateOver: items}
    nodes: [{id: check, type: transform, parameters: {transformFunction: "x => { throw new Error('no ' + x) }", retries: 0}}]
""",
        {"items": [7]},
    )
    assert result["status"] == "failed"
    assert result["error"]["nodeId"] == "each#0/check"


def test_nested_loops_and_empty_items(run_blueprint: RunBlueprint) -> None:
    result = run_blueprint(
        """
id: nested
name: Nested
nodes:
  - id: rows
    type: loop
    parameters: {iterateOver: rows}
    nodes:
      - id: cells
        type: loop
        nodes: [{id: inc, type: transform, parameters: {transformFunction: "x => x + 1"}}]
  - {id: none, type: loop, parameters: {items: []}, nodes: [{id: never, type: delay}]}
""",
        {"rows": [[1, 2], [], [3]]},
    )
    assert result["status"] == "succeeded", result["error"]
    assert result["data"]["rows"]["result"] == [[2, 3], [], [4]]
    assert result["data"]["none"]["result"] == []


def test_loop_times_without_a_body(run_blueprint: RunBlueprint) -> None:
    result = run_blueprint(
        "id: t\nname: T\nnodes: [{id: n, type: loop, parameters: {loopType: times, times: 3}}]\n"
    )
    records = result["data"]["n"]["result"]["results"]  # Atomiton's stub shape
    assert [record["iteration"] for record in records] == [0, 1, 2]


PARALLEL = """
id: par
name: Par
nodes:
  - id: p
    type: parallel
    parameters: {strategy: STRATEGY}
    nodes:
      - {id: slow, type: delay, parameters: {ms: 600}}
      - {id: fast, type: transform, parameters: {transformFunction: "x => 'fast'"}}
      - {id: bad, type: transform, parameters: {transformFunction: "x => { throw new Error('bad child') }"}}
"""


def test_parallel_all_settled_lists_every_outcome(run_blueprint: RunBlueprint) -> None:
    result = run_blueprint(PARALLEL.replace("STRATEGY", "allSettled"), {"v": 1})
    assert result["status"] == "succeeded", result["error"]
    outcomes = {entry["id"]: entry for entry in result["data"]["p"]["result"]}
    assert outcomes["fast"] == {"id": "fast", "status": "fulfilled", "value": "fast"}
    assert outcomes["slow"]["status"] == "fulfilled"
    assert outcomes["bad"]["status"] == "rejected"
    assert "bad child" in outcomes["bad"]["reason"]["message"]
    assert result["data"]["p"]["failed"] == 1


def test_parallel_race_returns_the_first_to_finish(run_blueprint: RunBlueprint) -> None:
    result = run_blueprint(PARALLEL.replace("STRATEGY", "race"), {"v": 1})
    assert result["status"] == "succeeded", result["error"]
    assert result["data"]["p"]["winner"] == "fast"
    assert result["data"]["p"]["result"] == "fast"


def test_parallel_all_fails_on_a_failing_child(run_blueprint: RunBlueprint) -> None:
    result = run_blueprint(PARALLEL.replace("STRATEGY", "all"), {"v": 1})
    assert result["status"] == "failed"
    assert result["error"]["nodeId"] == "p/bad"


def test_a_rate_limit_spaces_nodes_out_across_workers_and_they_wait(
    run_blueprint: RunBlueprint,
) -> None:
    nodes = "\n".join(
        f"  - {{id: n{i}, type: transform, rate_limit: {{per_second: 4, key: t{i // 6}}},"
        f" parameters: {{transformFunction: 'x => {i}'}}}}"
        for i in range(6)
    )
    result = run_blueprint(f"id: rl\nname: RL\nnodes:\n{nodes}\n", timeout_s=60)
    assert result["status"] == "succeeded", result["error"]
    starts = sorted(step["start_offset_ms"] for step in result["trace"])
    assert all(step["attempts"] == 1 for step in result["trace"])  # waiting is not an attempt
    assert starts[-1] - starts[0] >= 5 * 250 * 0.8  # 6 runs at 4/s: at least ~1.25 s apart
