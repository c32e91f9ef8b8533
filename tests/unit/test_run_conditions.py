"""Conditions at run time (workers/skipping.py, nodes/if_node.py, nodes/switch.py): branches
not taken and false `runIf`s end nodes skipped, skipping propagates, joins run with what
arrived; over the in-memory stores, node by node as the canvas runs them."""

from __future__ import annotations

from typing import Any

import pytest

from conductor.model.plan import PlannedNode, Wire
from nodes.branching import skipped_output
from nodes.errors import ScriptError
from nodes.js_expressions import evaluate_all
from nodes.registry import NodeRegistry
from storage.events import EventType
from storage.state import NodeStatus
from tests.unit.blueprints import blueprint, edge, group, node
from tests.unit.test_run_node import (
    EXECUTION_ID,
    CountNode,
    Execution,
    collector,
    emit,
    outcomes,
    registry,
)
from workers.run_node import Outcome
from workers.skipping import nothing_arrived

__all__ = ["registry"]  # the fixture


def if_node(node_id: str, condition: str, **options: Any) -> dict[str, Any]:
    return node(node_id, "if", condition=condition, **options)


def branches(condition: str = "$input.n > 10") -> list[dict[str, Any]]:
    """src -> check -(true)-> yes -> after-yes, check -(false)-> no, both into join."""
    return [
        emit("src", result={"n": 1}),
        if_node("check", condition),
        node("yes", "transform", transformFunction="item => 'big ' + item.n"),
        node("after-yes", "transform", transformFunction="item => item + '!'"),
        node("no", "transform", transformFunction="item => 'small ' + item.n"),
        collector("join"),
    ]


BRANCH_EDGES = [
    edge("src", "check"),
    edge("check", "yes", sourceHandle="true"),
    edge("yes", "after-yes"),
    edge("check", "no", sourceHandle="false"),
    edge("after-yes", "join"),
    edge("no", "join"),
]


def skip_reasons(execution: Execution) -> dict[str | None, str]:
    events = execution.state.events(EXECUTION_ID) or []
    return {e.node_id: e.data["reason"] for e in events if e.type is EventType.NODE_SKIPPED}


def test_the_branch_not_taken_is_skipped_and_the_join_gets_what_arrived(
    registry: NodeRegistry,
) -> None:
    execution = Execution(registry, blueprint(branches(), BRANCH_EDGES))
    runs = execution.run_all()
    assert outcomes(runs) == {
        "src": Outcome.SUCCEEDED,
        "check": Outcome.SUCCEEDED,
        "yes": Outcome.SKIPPED,
        "no": Outcome.SUCCEEDED,
        "after-yes": Outcome.SKIPPED,
        "join": Outcome.SUCCEEDED,
    }
    assert execution.output("check") == {"result": {"n": 1}, "$branches": ["false"]}
    # one port, two edges, one delivered: the value itself, not a list of one
    assert execution.output("join")["result"]["main"] == "small 1"
    reasons = skip_reasons(execution)
    assert reasons["yes"] == "nothing arrived: branch 'true' of 'check' not taken (took 'false')"
    assert reasons["after-yes"] == "nothing arrived: 'yes' was skipped"
    assert execution.output("yes") == {"result": None, "$skipped": reasons["yes"]}
    result = execution.final()
    assert result["status"] == "succeeded"
    assert "yes" not in result["executedNodes"]
    statuses = {step["nodeId"]: step["status"] for step in result["trace"]}
    assert statuses["yes"] == statuses["after-yes"] == "skipped"


def test_the_true_branch(registry: NodeRegistry) -> None:
    execution = Execution(registry, blueprint(branches("$input.n < 10"), BRANCH_EDGES))
    runs = execution.run_all()
    assert runs["no"].outcome is Outcome.SKIPPED
    assert execution.output("join")["result"]["main"] == "big 1!"


def test_a_join_on_two_ports_keeps_its_shape(registry: NodeRegistry) -> None:
    edges = [*BRANCH_EDGES[:4], edge("after-yes", "join", targetHandle="left")]
    edges.append(edge("no", "join", targetHandle="right"))
    execution = Execution(registry, blueprint(branches(), edges))
    execution.run_all()
    assert execution.output("join")["result"]["main"] == {"right": "small 1"}


def test_nothing_downstream_of_a_skip_runs_when_nothing_else_feeds_it(
    registry: NodeRegistry,
) -> None:
    nodes = [*branches(), node("tail", "count")]
    execution = Execution(registry, blueprint(nodes, [*BRANCH_EDGES, edge("after-yes", "tail")]))
    runs = execution.run_all()
    assert runs["tail"].outcome is Outcome.SKIPPED
    assert "tail" not in CountNode.calls
    assert (
        execution.final()["data"]["tail"]["$skipped"] == "nothing arrived: 'after-yes' was skipped"
    )


def test_run_if_false_skips_the_node_and_what_only_it_feeds(registry: NodeRegistry) -> None:
    nodes = [
        emit("src", result={"n": 3}),
        {**node("maybe", "count"), "runIf": "$input.n > $vars.limit"},
        node("after", "count"),
        {**node("sure", "count"), "runIf": "$input.n > 1 && $inputs.default.result.n === 3"},
    ]
    edges = [edge("src", "maybe"), edge("maybe", "after"), edge("src", "sure")]
    execution = Execution(registry, blueprint(nodes, edges), {"limit": 5})
    runs = execution.run_all()
    assert outcomes(runs)["maybe"] is Outcome.SKIPPED
    assert outcomes(runs)["after"] is Outcome.SKIPPED
    assert outcomes(runs)["sure"] is Outcome.SUCCEEDED
    assert skip_reasons(execution)["maybe"] == "runIf is false: $input.n > $vars.limit"


def test_a_run_if_that_throws_fails_the_node_naming_it(registry: NodeRegistry) -> None:
    nodes = [emit("src", result=None), {**node("maybe", "count"), "runIf": "$input.missing.x"}]
    execution = Execution(registry, blueprint(nodes, [edge("src", "maybe")]))
    runs = execution.run_all()
    assert runs["maybe"].outcome is Outcome.FAILED  # not retried: it would throw again
    error = execution.final()["error"]
    assert error["nodeId"] == "maybe"
    assert error["message"].startswith("runIf: JavaScript threw TypeError")


def test_a_group_run_if_skips_its_children_and_the_group(registry: NodeRegistry) -> None:
    inner = group(
        "g",
        [node("first", "count"), node("second", "count")],
        [edge("first", "second")],
    )
    nodes = [
        emit("src", result={"n": 1}),
        {**inner, "runIf": "$input.n > 1"},
        node("after", "count"),
    ]
    execution = Execution(registry, blueprint(nodes, [edge("src", "g"), edge("g", "after")]))
    runs = execution.run_all()
    assert outcomes(runs)["g/first"] is Outcome.SKIPPED
    assert outcomes(runs)["g/second"] is Outcome.SKIPPED
    assert outcomes(runs)["g"] is Outcome.SKIPPED
    assert outcomes(runs)["after"] is Outcome.SKIPPED
    assert skip_reasons(execution)["g/first"] == "runIf of 'g' is false: $input.n > 1"


def test_a_group_whose_run_if_holds_runs(registry: NodeRegistry) -> None:
    inner = group("g", [{**node("only", "count"), "runIf": "$input.n === 1"}])
    nodes = [emit("src", result={"n": 1}), {**inner, "runIf": "$input.n >= 1"}]
    execution = Execution(registry, blueprint(nodes, [edge("src", "g")]))
    runs = execution.run_all()
    assert outcomes(runs) == {
        "src": Outcome.SUCCEEDED,
        "g/only": Outcome.SUCCEEDED,
        "g": Outcome.SUCCEEDED,
    }


def test_switch_takes_the_first_match_or_every_match_or_the_fallback(
    registry: NodeRegistry,
) -> None:
    cases = [
        {"output": "apples", "equals": "apple"},
        {"output": "long", "when": "$input.kind.length > 3"},
    ]
    targets = ["apples", "long", "default"]
    nodes = [
        node("route", "switch", value="$input.kind", cases=cases),
        *(node(target, "count") for target in targets),
    ]
    edges = [edge("route", target, sourceHandle=target) for target in targets]
    found: dict[str, list[str]] = {}
    for kind in ("apple", "pear", "fig"):
        execution = Execution(registry, blueprint(nodes, edges), {"kind": kind})
        runs = execution.run_all()
        found[kind] = [t for t in targets if runs[t].outcome is Outcome.SUCCEEDED]
    assert found == {"apple": ["apples"], "pear": ["long"], "fig": ["default"]}
    every = [node("route", "switch", value="$input.kind", cases=cases, allMatches=True)]
    execution = Execution(registry, blueprint(every + nodes[1:], edges), {"kind": "apple"})
    execution.run_all()
    assert execution.output("route")["$branches"] == ["apples", "long"]


def test_a_disabled_if_passes_its_input_on_its_first_handle(registry: NodeRegistry) -> None:
    nodes = [emit("src", result=1), if_node("check", "false", enabled=False)]
    nodes += [node("yes", "count"), node("no", "count")]
    edges = [edge("src", "check"), edge("check", "yes", sourceHandle="true")]
    edges.append(edge("check", "no", sourceHandle="false"))
    execution = Execution(registry, blueprint(nodes, edges))
    runs = execution.run_all()
    assert runs["yes"].outcome is Outcome.SUCCEEDED
    assert runs["no"].outcome is Outcome.SKIPPED
    assert execution.record("check").status is NodeStatus.SKIPPED
    assert skip_reasons(execution)["check"] == "disabled"


def test_a_skip_reason_names_at_most_three_inputs() -> None:
    wires = [Wire(source=f"s{n}") for n in range(5)]
    spec = PlannedNode(key="join", id="join", type="delay", wires=wires)
    outputs = {f"s{n}": skipped_output("x") for n in range(5)}
    reason = nothing_arrived(spec, outputs)
    assert reason == (
        "nothing arrived: 's0' was skipped; 's1' was skipped; 's2' was skipped; and 2 more"
    )
    outputs["s4"] = {"result": 1}
    assert nothing_arrived(spec, outputs) is None


def test_expressions_that_do_not_compile_at_run_time_name_their_labels() -> None:
    with pytest.raises(ScriptError, match=r"^a, b: JavaScript threw SyntaxError"):
        evaluate_all([("a", "1"), ("b", "(")], {}, 2.0)
    assert evaluate_all([], {}, 2.0) == []


def test_a_parallel_collects_only_the_children_that_ran(registry: NodeRegistry) -> None:
    children = [
        {**node("a", "transform", transformFunction="n => n + 1"), "runIf": "$input > 5"},
        node("b", "transform", transformFunction="n => n * 2"),
    ]
    parallel = {**group("p", children), "type": "parallel"}
    execution = Execution(
        registry, blueprint([emit("src", result=3), parallel], [edge("src", "p")])
    )
    runs = execution.run_all()
    assert runs["p/a"].outcome is Outcome.SKIPPED
    output = execution.output("p")
    assert [entry["id"] for entry in output["settled"]] == ["b"]
    assert output["result"][0]["value"] == 6


def test_a_blueprint_run_if_gates_the_whole_execution(registry: NodeRegistry) -> None:
    model = blueprint([node("a", "count"), node("b", "count")], [edge("a", "b")], runIf="$vars.go")
    skipped = Execution(registry, model, {"go": False})
    assert outcomes(skipped.run_all()) == {"a": Outcome.SKIPPED, "b": Outcome.SKIPPED}
    assert skipped.final()["status"] == "succeeded"
    assert skip_reasons(skipped)["a"] == "runIf of 'bp-1' is false: $vars.go"
    ran = Execution(registry, model, {"go": True})
    assert outcomes(ran.run_all()) == {"a": Outcome.SUCCEEDED, "b": Outcome.SUCCEEDED}
