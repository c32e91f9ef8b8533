"""Blueprint-as-node without Redis (docs/children.md): references checked and pinned at submit,
the node's inputs and output, and the child ids."""

from __future__ import annotations

from typing import Any

import pytest

from conductor.child_references import ChildReferences, ancestors
from conductor.model.children import ChildState, child_id, child_signal
from conductor.model.loader import blueprint_from_data
from conductor.model.plan import ExecutionPlan
from conductor.model.problems import InvalidBlueprint
from nodes.base import NodeContext
from nodes.blueprint_node import BlueprintNode, BlueprintParameters, child_inputs, child_output
from nodes.errors import NodeError
from storage.blueprints import MemoryBlueprintStore
from storage.memory_state import MemoryStateStore


def uses(blueprint_id: str, target: str, **parameters: Any) -> dict[str, Any]:
    node = {"id": "run", "type": "blueprint", "parameters": {"blueprintId": target, **parameters}}
    return {"id": blueprint_id, "name": blueprint_id, "nodes": [node]}


def leaf(blueprint_id: str) -> dict[str, Any]:
    return {"id": blueprint_id, "name": blueprint_id, "nodes": [{"id": "x", "type": "delay"}]}


def references(*stored: dict[str, Any], max_depth: int = 10) -> ChildReferences:
    store = MemoryBlueprintStore()
    for blueprint in stored:
        store.create(blueprint)
    return ChildReferences(lambda: store, max_depth)


def test_the_latest_revision_is_pinned_also_in_nested_groups() -> None:
    found = references(leaf("c"))
    found.store().replace("c", leaf("c"))
    group = {"id": "g", "type": "group", "nodes": uses("x", "c")["nodes"]}
    pinned = found.pin(blueprint_from_data({"id": "p", "name": "p", "nodes": [group]}))
    assert pinned.nodes[0].nodes[0].parameters == {"blueprintId": "c", "revision": 2}
    plain = blueprint_from_data(leaf("p"))
    assert found.pin(plain) is plain  # nothing to resolve


def test_a_cycle_through_stored_blueprints_names_the_chain() -> None:
    found = references(uses("a", "b"), uses("b", "a"))
    with pytest.raises(InvalidBlueprint) as caught:
        found.pin(blueprint_from_data(uses("top", "a")))
    (problem,) = caught.value.problems
    assert problem.path == "nodes[0].parameters.blueprintId"
    assert problem.code.value == "CIRCULAR_DEPENDENCY"
    assert "top -> a -> b -> a" in problem.message
    assert "nodes[0].parameters.blueprintId" in problem.message.split(": ", 1)[1]


def test_missing_blueprints_and_revisions_are_named_by_field() -> None:
    found = references(leaf("c"))
    with pytest.raises(InvalidBlueprint) as missing:
        found.pin(blueprint_from_data(uses("p", "nope")))
    assert missing.value.problems[0].message == "no stored Blueprint 'nope' (p -> nope)"
    with pytest.raises(InvalidBlueprint) as revision:
        found.pin(blueprint_from_data(uses("p", "c", revision=4)))
    assert revision.value.problems[0].path == "nodes[0].parameters.revision"
    assert "has no revision 4" in revision.value.problems[0].message


def test_nesting_deeper_than_the_limit_is_refused() -> None:
    found = references(uses("a", "b"), uses("b", "c"), leaf("c"), max_depth=2)
    with pytest.raises(InvalidBlueprint) as caught:
        found.pin(blueprint_from_data(uses("top", "a")))
    assert "deeper than 2" in str(caught.value)
    assert found.pin(blueprint_from_data(uses("top", "b")), ancestors=()) is not None
    with pytest.raises(InvalidBlueprint):  # a child's own ancestors count too
        found.pin(blueprint_from_data(uses("b", "c")), ancestors=("x", "y"))


def test_references_chosen_at_run_time_are_left_to_the_worker() -> None:
    found = references()
    templated = blueprint_from_data(uses("p", "{{$input.which}}"))
    assert found.pin(templated).nodes[0].parameters == {"blueprintId": "{{$input.which}}"}
    odd = blueprint_from_data(uses("p", "c", revision="{{$input.n}}"))
    assert found.pin(odd).nodes[0].parameters["revision"] == "{{$input.n}}"


def test_ancestors_walk_the_parent_links() -> None:
    state = MemoryStateStore()
    top = ExecutionPlan(
        execution_id="t", blueprint_id="top", blueprint_name="T", nodes={}, sinks=[]
    )
    state.create(top)
    child = top.model_copy(
        update={"execution_id": "c", "blueprint_id": "mid", "parent_id": "t", "parent_node": "n"}
    )
    state.create(child)
    assert ancestors(state, "c") == ("top", "mid")
    assert ancestors(state, "gone") == ()


def context(data: Any = None, **ports: Any) -> NodeContext:
    return NodeContext(execution_id="e", node_id="run", node_key="g/run", inputs=ports, data=data)


def test_the_child_inputs_come_from_the_ports_then_the_parameter() -> None:
    params = BlueprintParameters(blueprintId="c", inputs={"b": 3})
    found = child_inputs(params, context({"a": 1, "b": 2}, default={"a": 1, "b": 2}, extra=9))
    assert found == {"a": 1, "b": 3, "extra": 9}
    assert child_inputs(params, context("text")) == {"b": 3}


def test_the_output_is_the_child_data_plus_its_id() -> None:
    data = {"sink": {"result": 1}}
    ok = ChildState("c1", "succeeded", {"data": data, "error": None})
    assert child_output(ok) == {"sink": {"result": 1}, "result": data, "executionId": "c1"}
    failed = ChildState(
        "c1", "failed", {"error": {"code": "TIMEOUT", "message": "slow", "nodeId": "x"}}
    )
    with pytest.raises(NodeError) as caught:
        child_output(failed)
    assert caught.value.code == "TIMEOUT" and not caught.value.retryable
    assert str(caught.value) == "child execution c1 failed at node x: slow"
    with pytest.raises(NodeError) as again:
        child_output(ChildState("c1", "running"))
    assert again.value.retryable


def test_outside_a_worker_the_node_refuses() -> None:
    node = BlueprintNode()
    with pytest.raises(NodeError, match="only on a worker"):
        node.wait(BlueprintParameters(blueprintId="c"), context())


def test_child_ids_are_stable_per_parent_and_node() -> None:
    assert child_id("p", "run") == child_id("p", "run") != child_id("p", "other")
    assert child_signal("g/run") == "child/g/run"
