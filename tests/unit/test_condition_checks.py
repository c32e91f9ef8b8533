"""Validation of conditions (conductor/condition_checks.py) and how the planner places a
group's `runIf` (conductor/compiler.py)."""

from __future__ import annotations

from typing import Any

from conductor.compiler import compile_plan
from conductor.model.plan import RunIf
from conductor.validation import validate
from nodes.js_expressions import parse_problem, same_value
from nodes.registry import default_registry
from tests.unit.blueprints import blueprint, edge, group, node


def problems(nodes: list[dict[str, Any]], edges: list[dict[str, Any]]) -> dict[str, str]:
    found = validate(blueprint(nodes, edges), default_registry())
    return {problem.path: problem.message for problem in found}


def test_every_expression_that_does_not_parse_is_named_by_its_path() -> None:
    cases = [{"output": "a", "when": "$input.n >"}, {"output": "b", "when": "$input.ok"}]
    nodes = [
        {**node("first"), "runIf": "$input.n >>> "},
        node("check", "if", condition="$input.("),
        node("route", "switch", value="(", cases=cases),
        group("g", [{**node("inner"), "runIf": "if (x) {}"}]),
    ]
    found = problems(nodes, [])
    assert set(found) == {
        "nodes[0].runIf",
        "nodes[1].parameters.condition",
        "nodes[2].parameters.value",
        "nodes[2].parameters.cases[0].when",
        "nodes[3].nodes[0].runIf",
    }
    assert all(message.startswith("does not parse: SyntaxError") for message in found.values())


def test_edges_from_a_branching_node_name_one_of_its_handles() -> None:
    cases = [{"output": "small", "when": "$input.n < 10"}]
    nodes = [
        node("check", "if", condition="$input.ok"),
        node("route", "switch", cases=cases, fallbackOutput="other"),
        node("a"),
        node("b"),
        node("c"),
    ]
    edges = [
        edge("check", "a", sourceHandle="yes"),
        edge("check", "b"),
        edge("route", "c", sourceHandle="default"),
        edge("route", "a", sourceHandle="other"),
        edge("check", "c", sourceHandle="true"),
    ]
    assert problems(nodes, edges) == {
        "edges[0].sourceHandle": "if node 'check' has no handle 'yes'; its handles: true, false",
        "edges[1].sourceHandle": "an edge from if node 'check' names no branch: true, false",
        "edges[2].sourceHandle": "switch node 'route' has no handle 'default'; its handles: "
        "small, other",
    }


def test_a_valid_conditional_blueprint_has_no_problem() -> None:
    nodes = [
        node("check", "if", condition="$input.n > $vars.limit"),
        {**node("a"), "runIf": "$inputs.default.result !== null"},
    ]
    assert problems(nodes, [{"source": "check", "target": "a", "sourceHandle": True}]) == {}


def test_parameters_of_if_and_switch_are_checked() -> None:
    nodes = [
        node("check", "if"),
        node("route", "switch", cases=[{"output": "x", "equals": 1}]),
        node("both", "switch", value="1", cases=[{"output": "x", "when": "1", "equals": 1}]),
        node("templated", "if", condition="{{$input.code}}"),
        node("misplaced", "delay", runIf="true"),
    ]
    found = problems(nodes, [])
    literal = validate(blueprint(nodes, []), default_registry())
    assert any(p.message.startswith("must be a literal value for if") for p in literal)
    assert found["nodes[0].parameters.condition"] == "Field required"
    assert "needs the switch's `value`" in found["nodes[1].parameters"]
    assert "exactly one of `when` and `equals`" in found["nodes[2].parameters.cases[0]"]
    assert "node option" in found["nodes[4].parameters.runIf"]


def test_parse_problem_refuses_what_is_no_expression() -> None:
    assert parse_problem("$input.a && $vars.b") is None
    assert parse_problem("  ") is not None
    assert parse_problem(3) is not None
    assert parse_problem("x" * 10_001) == "must be at most 10000 characters"
    # compiled only: code that would never end is not run
    assert parse_problem("1); while (true) {}; (1") is None
    assert parse_problem("(" * 4999 + "1" + ")" * 4999) == "SyntaxError: stack overflow"


def test_same_value_is_json_equality() -> None:
    assert same_value(1, 1.0)
    assert not same_value(True, 1)
    assert same_value({"a": [1, 2.0]}, {"a": [1, 2]})
    assert not same_value("1", 1)


def test_a_group_run_if_goes_to_the_children_its_input_enters() -> None:
    inner = group(
        "g",
        [{**node("first"), "runIf": "$input.ok"}, node("second"), node("side")],
        [edge("first", "second")],
    )
    model = blueprint([{**inner, "runIf": "$vars.go"}])
    plan = compile_plan(model, "e", {})
    outer = RunIf(expression="$vars.go", owner="g")
    assert plan.nodes["g/first"].run_if == [outer, RunIf(expression="$input.ok", owner="g/first")]
    assert plan.nodes["g/side"].run_if == [outer]
    assert plan.nodes["g/second"].run_if == []  # fed by `first`: skipped when it is
    assert plan.nodes["g"].run_if == []  # it collects its children: skipped when they all are


def test_a_blueprint_run_if_is_parsed_too() -> None:
    found = validate(blueprint([node("a")], [], runIf="$vars.go &&"), default_registry())
    assert [problem.path for problem in found] == ["runIf"]
