"""A bodyless loop's `item`/`index` handle makes the nodes it feeds its body (planned as if
written in its `nodes`); a parallel given no operations passes its input through; a loop
whose every item failed fails with the first item's error."""

from __future__ import annotations

import dataclasses

import pytest

from conductor.compiler import compile_plan
from conductor.loop_bodies import body_of
from conductor.model.loader import load_blueprint_text
from conductor.model.plan import ITEM_SOURCE, ExecutionPlan, PlannedNode, Wire
from conductor.validation import validate
from nodes.base import NodeContext, settled_failure
from nodes.containers import ContainerRun
from nodes.errors import NodeError
from nodes.loop import LoopNode, LoopParameters
from nodes.parallel import ParallelNode, ParallelParameters
from nodes.registry import default_registry
from tests.conftest import REPO
from tests.unit.test_atomiton_containers import context

FAN_OUT = """
id: fan
name: Fan
nodes:
  - {id: src, type: edit-fields, parameters: {values: {xs: [1, 2]}, keepOnlySet: true}}
  - {id: side, type: edit-fields, parameters: {values: {s: 1}, keepOnlySet: true}}
  - {id: each, type: loop, parameters: {iterateOver: xs, breakOnError: true}}
  - {id: a, type: transform, parameters: {transformFunction: "x => x"}}
  - {id: b, type: transform, parameters: {transformFunction: "x => x"}}
  - {id: at, type: transform, parameters: {transformFunction: "i => i"}}
  - {id: mixed, type: transform, parameters: {transformFunction: "x => x"}}
  - {id: after_mixed, type: transform, parameters: {transformFunction: "x => x"}}
  - {id: out, type: transform, parameters: {transformFunction: "x => x"}}
  - {id: done, type: transform, parameters: {transformFunction: "x => x"}}
edges:
  - {source: src, target: each}
  - {source: each, target: a, sourceHandle: item, targetHandle: input}
  - {source: a, target: b}
  - {source: each, target: at, sourceHandle: index, targetHandle: position}
  - {source: b, target: mixed}
  - {source: side, target: mixed}
  - {source: mixed, target: after_mixed}
  - {source: b, target: out, targetHandle: input}
  - {source: at, target: out, targetHandle: input}
  - {source: side, target: out, targetHandle: extra}
  - {source: each, target: done, sourceHandle: complete}
  - {source: b, target: done}
"""


def plan_of(text: str) -> ExecutionPlan:
    """The plan of a Blueprint that validates."""
    blueprint = load_blueprint_text(text)
    assert validate(blueprint, default_registry()) == []
    return compile_plan(blueprint, "exec-1", {})


def body(plan: ExecutionPlan, key: str) -> dict[str, PlannedNode]:
    return {node.key: node for node in plan.nodes[key].body}


def test_the_item_handle_makes_its_closure_the_body() -> None:
    plan = plan_of(FAN_OUT)
    # fed from outside too (side, the loop's complete): not in the body, nor what follows
    assert list(plan.nodes) == ["src", "side", "each", "mixed", "after_mixed", "out", "done"]
    inner = body(plan, "each")
    assert list(inner) == ["a", "b", "at"]
    assert inner["a"].wires == [Wire(source=ITEM_SOURCE, source_handle="item", port="input")]
    assert inner["at"].wires == [Wire(source=ITEM_SOURCE, source_handle="index", port="position")]
    assert inner["b"].wires == [Wire(source="a")]
    assert plan.nodes["each"].body_sinks == ["b", "at"]
    # breakOnError: true, so an item's failure is not settled
    assert not any(node.settle for node in inner.values())


def test_edges_leaving_the_body_come_from_the_loop() -> None:
    plan = plan_of(FAN_OUT)
    assert plan.nodes["mixed"].wires == [Wire(source="each"), Wire(source="side")]
    assert plan.nodes["after_mixed"].wires == [Wire(source="mixed")]
    # b and at both fed `out` on one port: one edge from the loop stands for both, in place
    assert plan.nodes["out"].wires == [
        Wire(source="each", port="input"),
        Wire(source="side", port="extra"),
    ]
    # the loop already fed `done` (its complete handle): no second wire
    assert plan.nodes["done"].wires == [Wire(source="each", source_handle="complete")]
    assert plan.sinks == ["after_mixed", "out", "done"]


def test_pruning_runs_until_nothing_changes() -> None:
    edges = load_blueprint_text(
        """
id: p
name: P
nodes: [{id: l, type: loop}, {id: p, type: delay}, {id: q, type: delay},
        {id: r, type: delay}, {id: s, type: delay}, {id: o, type: delay}]
edges:
  - {source: l, target: p, sourceHandle: item}
  - {source: p, target: q}
  - {source: o, target: q}
  - {source: q, target: r}
  - {source: p, target: s}
"""
    ).edges
    assert body_of("l", edges) == {"p", "s"}  # r is fed only by q, which is fed from outside
    assert body_of("o", edges) == set()


def test_atomitons_image_processor_runs_its_chain_per_image() -> None:
    plan = plan_of((REPO / "examples/atomiton/image-processor.flow.yaml").read_text())
    assert list(plan.nodes) == ["image-source", "image-loop"]
    inner = body(plan, "image-loop")
    assert list(inner) == [
        "parallel-processor",
        "image-resize",
        "image-watermark",
        "save-processed",
    ]
    entry = inner["parallel-processor"].wires
    assert entry == [Wire(source=ITEM_SOURCE, source_handle="item", port="input")]
    assert plan.nodes["image-loop"].body_sinks == ["save-processed"]
    assert all(node.settle for node in inner.values())  # breakOnError: false
    assert plan.sinks == ["image-loop"]


def test_loops_with_children_or_no_item_edge_and_nested_levels() -> None:
    plan = plan_of(
        """
id: n
name: N
nodes:
  - id: own
    type: loop
    nodes: [{id: inner, type: transform, parameters: {transformFunction: "x => x"}}]
  - {id: plain, type: loop}
  - {id: next, type: transform, parameters: {transformFunction: "x => x"}}
  - id: g
    type: group
    nodes:
      - {id: l, type: loop}
      - {id: x, type: transform, parameters: {transformFunction: "x => x"}}
    edges: [{source: l, target: x, sourceHandle: item}]
edges:
  - {source: own, target: next, sourceHandle: item}
  - {source: plain, target: next}
"""
    )
    assert list(body(plan, "own")) == ["inner"]  # a written body stays; item edges too
    assert plan.nodes["next"].wires == [
        Wire(source="own", source_handle="item"),
        Wire(source="plain"),
    ]
    assert plan.nodes["plain"].body == []
    assert list(body(plan, "g/l")) == ["x"]
    assert "g/x" not in plan.nodes


def test_a_parallel_given_no_operations_passes_its_input_through() -> None:
    item = {"name": "a.jpg", "path": "/images/input/a.jpg"}
    out = ParallelNode().run(ParallelParameters(), context(item, input=item))
    assert out == {
        "result": item,
        "results": [],
        "completed": 0,
        "failed": 0,
        "duration": 0,
        "success": True,
    }
    given_none = ParallelNode().run(ParallelParameters(operations=[]), context(item))
    assert given_none["result"] == []  # an empty list is operations: none ran


def collecting(count: int) -> NodeContext:
    inputs = {f"$item/{i}": {"item": i} for i in range(count)}
    return dataclasses.replace(context(**inputs), container=ContainerRun(0))


def test_a_loop_whose_every_item_failed_fails_naming_the_first() -> None:
    first = {"code": "EXECUTION_FAILED", "message": "image 'm.png' not found", "nodeId": "l#0/w"}
    second = {**first, "nodeId": "l#1/w"}
    outcomes = [settled_failure(first), settled_failure(second)]
    with pytest.raises(NodeError) as caught:
        LoopNode().collect(LoopParameters(), collecting(2), outcomes)
    assert str(caught.value) == "image 'm.png' not found (all 2 items failed)"
    assert (caught.value.node_id, caught.value.code) == ("l#0/w", "EXECUTION_FAILED")
    assert caught.value.retryable is False
    one = LoopNode().collect(LoopParameters(), collecting(2), [{"result": 1}, outcomes[1]])
    assert (one["result"], one["success"]) == ([1, None], False)
    assert LoopNode().collect(LoopParameters(), collecting(0), [])["errors"] == []
