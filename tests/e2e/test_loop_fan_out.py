"""A bodyless loop's `item`/`index` handle runs the nodes it feeds once per item, on a real
worker: results in item order, a failed item in `errors`, a node outside gets the loop's
output; when every item failed the run fails naming the first item's node."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from conductor.control import ControlOutcome
from tests.e2e.conftest import RunBlueprint
from tests.e2e.fault_stack import Stack, assert_sound, private_stack

FAN_OUT = """
id: fan
name: Fan
nodes:
  - {id: start, type: edit-fields, parameters: {values: {xs: [3, -1, 5]}, keepOnlySet: true}}
  - {id: each, type: loop, parameters: {iterateOver: xs, concurrency: 2, continueOnError: true}}
  - {id: pass, type: parallel}
  - id: check
    type: transform
    parameters:
      transformFunction: "x => { if (x < 0) throw new Error('negative ' + x); return x * 10 }"
      retries: 0
  - {id: plus, type: transform, parameters: {transformFunction: "x => x + 1"}}
  - {id: at, type: transform, parameters: {transformFunction: "i => i * 100"}}
  - id: after
    type: transform
    parameters: {transformFunction: "d => d.looped.filter(r => r).length + d.seed.xs.length"}
  - id: done
    type: transform
    parameters: {transformFunction: "r => r === null ? 'failed' : r.plus + r.at"}
  - id: report
    type: edit-fields
    parameters:
      values: {errors: "{{$inputs.loop.errors}}", records: "{{$inputs.loop.results}}"}
      keepOnlySet: true
edges:
  - {source: start, target: each}
  - {source: each, target: pass, sourceHandle: item, targetHandle: input}
  - {source: pass, target: check}
  - {source: check, target: plus}
  - {source: each, target: at, sourceHandle: index}
  - {source: plus, target: after, targetHandle: looped}
  - {source: start, target: after, targetHandle: seed}
  - {source: each, target: done, sourceHandle: complete}
  - {source: each, target: report, targetHandle: loop}
"""

ALL_FAIL = """
id: all-fail
name: All fail
nodes:
  - {id: each, type: loop, parameters: {items: [1, 2]}}
  - id: boom
    type: transform
    parameters: {transformFunction: "x => { throw new Error('boom ' + x) }", retries: 0}
edges: [{source: each, target: boom, sourceHandle: item}]
"""


def test_the_item_handle_runs_the_chain_per_item_in_order(run_blueprint: RunBlueprint) -> None:
    result = run_blueprint(FAN_OUT)
    assert result["status"] == "succeeded", result["error"]
    data = result["data"]
    # `done` (the complete handle) maps over the loop's result: each item's, in item order
    assert data["done"]["result"] == [31, "failed", 251]
    report = data["report"]["result"]
    assert [record["item"] for record in report["records"]] == [3, -1, 5]
    assert [record["processed"] for record in report["records"]] == [True, False, True]
    (failure,) = report["errors"]
    assert failure["index"] == 1
    assert failure["error"]["nodeId"] == "each#1/check"
    assert "negative -1" in failure["error"]["message"]
    ran = result["executedNodes"]
    assert {"each#0/pass", "each#0/plus", "each#2/at", "each#1/check", "each"} <= set(ran)
    assert not {"pass", "check", "plus", "at"} & set(ran)
    assert ran.index("each") > max(ran.index(f"each#{i}/plus") for i in range(3))
    # outside the body (fed from outside too), `after` gets the loop's output where plus fed
    # it: every item's result (two succeeded), plus the 3 items it read from `start`
    assert data["after"]["result"] == 2 + 3


def test_every_item_failing_fails_the_run_at_the_first(run_blueprint: RunBlueprint) -> None:
    result = run_blueprint(ALL_FAIL)
    assert result["status"] == "failed"
    assert result["error"]["nodeId"] == "each#0/boom"
    assert "boom 1" in result["error"]["message"]
    assert "(all 2 items failed)" in result["error"]["message"]


READ_EACH = """
id: read-each
name: Read each
nodes:
  - {id: each, type: loop, parameters: {iterateOver: names}}
  - {id: load, type: file-system, parameters: {operation: read, path: "PREFIX-{{$input}}.txt", retries: 0}}
  - {id: shout, type: transform, parameters: {transformFunction: "t => t.toUpperCase()"}}
edges:
  - {source: each, target: load, sourceHandle: item}
  - {source: load, target: shout}
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A private Redis, a recorder and one worker: retry needs the control surface."""
    with private_stack(tmp_path_factory.mktemp("fan-out"), "fan-out") as stack:
        yield stack


@pytest.mark.timeout(120)
def test_retry_after_every_item_failed_reruns_the_items(stack: Stack) -> None:
    prefix = f"fan-{time.monotonic_ns()}"
    execution_id = stack.submit(READ_EACH.replace("PREFIX", prefix), {"names": ["a", "b"]})
    failed = stack.wait_final(execution_id)
    assert failed["status"] == "failed"
    assert failed["error"]["nodeId"] == "each#0/load"
    assert f"{prefix}-a.txt" in failed["error"]["message"]

    for name in ("a", "b"):
        (stack.data_dir / "files" / f"{prefix}-{name}.txt").write_text(f"file {name}")
    assert stack.control().retry(execution_id) is ControlOutcome.DONE
    result = stack.wait_final(execution_id)
    assert result["status"] == "succeeded", result["error"]
    assert result["data"]["each"]["result"] == ["FILE A", "FILE B"]
    attempts = {step["nodeId"]: step["attempts"] for step in result["trace"]}
    assert attempts["each#0/load"] == attempts["each#1/load"] == 2
    assert_sound(stack, [execution_id])
