"""conductor/validation.py: every problem, each named by its path, before anything is queued."""

from __future__ import annotations

from typing import Any

import pytest

from conductor.model.loader import load_blueprint_file, load_blueprint_text
from conductor.model.problems import ErrorCode, InvalidBlueprint, Problem
from conductor.validation import ensure_valid, find_warnings, validate
from nodes.registry import NodeRegistry
from tests.conftest import ATOMITON_FLOWS
from tests.unit.blueprints import blueprint, chain_edges, edge, group, node

FLOWS_DIR = ATOMITON_FLOWS


def problems_of(
    registry: NodeRegistry,
    nodes: list[dict[str, Any]],
    edges: list[dict[str, Any]] | None = None,
) -> list[Problem]:
    """The problems validation finds in a Blueprint made of `nodes` and `edges`."""
    return validate(blueprint(nodes, edges), registry)


def by_path(problems: list[Problem]) -> dict[str, Problem]:
    """Problems keyed by path (each path must appear once)."""
    paths = [p.path for p in problems]
    assert len(paths) == len(set(paths)), paths
    return {p.path: p for p in problems}


def test_a_valid_blueprint_has_no_problems(registry: NodeRegistry) -> None:
    nodes = [
        node("make", "edit-fields", values={"message": "hi"}, keepOnlySet=True),
        node("double", "transform", operation="map", transformFunction="item => item"),
        node("wait", "delay", ms=0, timeout=5000, retries=0, enabled=True),
    ]
    assert problems_of(registry, nodes, chain_edges("make", "double", "wait")) == []
    ensure_valid(blueprint(nodes, chain_edges("make", "double", "wait")), registry)


def test_duplicate_ids(registry: NodeRegistry) -> None:
    (problem,) = problems_of(registry, [node("a"), node("a")])
    assert problem.path == "nodes[1].id"
    assert problem.code is ErrorCode.VALIDATION_FAILED
    assert "duplicate id 'a'" in problem.message
    assert "nodes[0]" in problem.message


def test_ids_may_not_contain_the_key_separator(registry: NodeRegistry) -> None:
    (problem,) = problems_of(registry, [node("a/b")])
    assert problem.path == "nodes[0].id"


@pytest.mark.parametrize(
    ("edges", "path", "missing"),
    [
        ([edge("a", "zz")], "edges[0].target", "zz"),
        ([edge("zz", "a")], "edges[0].source", "zz"),
        ([edge("a", "b"), edge("b", "ghost")], "edges[1].target", "ghost"),
    ],
)
def test_edges_to_missing_nodes(
    registry: NodeRegistry, edges: list[dict[str, Any]], path: str, missing: str
) -> None:
    (problem,) = problems_of(registry, [node("a"), node("b")], edges)
    assert problem.path == path
    assert problem.code is ErrorCode.VALIDATION_FAILED
    assert repr(missing) in problem.message


def test_unknown_node_type(registry: NodeRegistry) -> None:
    (problem,) = problems_of(registry, [node("a", "no-such-type")])
    assert problem.path == "nodes[0].type"
    assert problem.code is ErrorCode.NODE_TYPE_NOT_FOUND
    assert "'no-such-type'" in problem.message
    for known in ("delay", "edit-fields", "group", "transform"):
        assert known in problem.message


def test_invalid_parameter_value(registry: NodeRegistry) -> None:
    (problem,) = problems_of(registry, [node("a", "delay", ms=-1)])
    assert problem.path == "nodes[0].parameters.ms"
    assert problem.code is ErrorCode.INVALID_PARAMETERS
    assert "greater than or equal to 0" in problem.message


def test_unknown_extra_parameter_warns_and_strict_refuses(registry: NodeRegistry) -> None:
    model = blueprint([node("a", "delay", ms=1, timout=3)])
    assert validate(model, registry) == []
    (warning,) = find_warnings(model, registry)
    assert warning.path == "nodes[0].parameters.timout"
    assert warning.code is ErrorCode.INVALID_PARAMETERS
    assert "did you mean 'timeout'?" in warning.message
    assert validate(model, registry, strict=True) == [warning]


@pytest.mark.parametrize(
    ("parameters", "path"),
    [
        ({"timeout": 0}, "nodes[0].parameters.timeout"),
        ({"retries": -1}, "nodes[0].parameters.retries"),
        ({"enabled": "sometimes"}, "nodes[0].parameters.enabled"),
        ({"operation": "explode"}, "nodes[0].parameters.operation"),
    ],
)
def test_invalid_base_and_typed_parameters(
    registry: NodeRegistry, parameters: dict[str, Any], path: str
) -> None:
    (problem,) = problems_of(registry, [node("a", "transform", **parameters)])
    assert problem.path == path
    assert problem.code is ErrorCode.INVALID_PARAMETERS


def test_cycle_is_reported_with_its_path(registry: NodeRegistry) -> None:
    nodes = [node("a"), node("b"), node("c")]
    (problem,) = problems_of(registry, nodes, [*chain_edges("a", "b", "c"), edge("c", "a")])
    assert problem.path == "edges"
    assert problem.code is ErrorCode.CIRCULAR_DEPENDENCY
    assert problem.message == "cycle a -> b -> c -> a"


def test_self_loop_is_a_cycle(registry: NodeRegistry) -> None:
    (problem,) = problems_of(registry, [node("a")], [edge("a", "a")])
    assert problem.code is ErrorCode.CIRCULAR_DEPENDENCY
    assert problem.message == "cycle a -> a"


def test_cycle_behind_an_acyclic_prefix(registry: NodeRegistry) -> None:
    nodes = [node("start"), node("x"), node("y")]
    edges = [edge("start", "x"), edge("x", "y"), edge("y", "x")]
    (problem,) = problems_of(registry, nodes, edges)
    assert problem.message == "cycle x -> y -> x"


def test_problems_inside_a_nested_group_carry_the_full_path(registry: NodeRegistry) -> None:
    inner = group(
        "g",
        [node("q", "no-such-type"), node("r", "delay", ms=-5), node("s"), node("s")],
        [edge("r", "s"), edge("s", "r"), edge("r", "missing")],
    )
    problems = by_path(problems_of(registry, [node("top"), inner]))
    assert set(problems) == {
        "nodes[1].nodes[0].type",
        "nodes[1].nodes[1].parameters.ms",
        "nodes[1].nodes[3].id",
        "nodes[1].edges[2].target",
        "nodes[1].edges",
    }
    assert problems["nodes[1].nodes[0].type"].code is ErrorCode.NODE_TYPE_NOT_FOUND
    assert problems["nodes[1].nodes[1].parameters.ms"].code is ErrorCode.INVALID_PARAMETERS
    assert "first used at nodes[1].nodes[2]" in problems["nodes[1].nodes[3].id"].message
    cycle = problems["nodes[1].edges"]
    assert cycle.code is ErrorCode.CIRCULAR_DEPENDENCY
    assert cycle.message == "cycle r -> s -> r"


def test_problems_two_groups_deep(registry: NodeRegistry) -> None:
    deep = group("outer", [node("x"), group("inner", [node("y", "delay", ms=-1)])])
    (problem,) = problems_of(registry, [deep])
    assert problem.path == "nodes[0].nodes[1].nodes[0].parameters.ms"


def test_same_id_in_different_groups_is_fine(registry: NodeRegistry) -> None:
    nodes = [node("a"), group("g", [node("a"), node("b")], [edge("a", "b")])]
    assert problems_of(registry, nodes, [edge("a", "g")]) == []


def test_edges_do_not_cross_group_boundaries(registry: NodeRegistry) -> None:
    nodes = [node("outside"), group("g", [node("inside")], [edge("outside", "inside")])]
    paths = [p.path for p in problems_of(registry, nodes, [edge("outside", "inside")])]
    assert paths == ["nodes[1].edges[0].source", "edges[0].target"]


def test_only_groups_hold_nodes(registry: NodeRegistry) -> None:
    holder = {**node("a", "delay"), "nodes": [node("b")]}
    (problem,) = problems_of(registry, [holder])
    assert problem.path == "nodes[0].nodes"


def test_several_problems_are_reported_together(registry: NodeRegistry) -> None:
    nodes = [
        node("a"),
        node("a"),
        node("c", "no-such-type"),
        node("d", "delay", ms=-1),
        node("e"),
        node("f"),
    ]
    edges = [edge("a", "zz"), edge("e", "f"), edge("f", "e")]
    problems = by_path(problems_of(registry, nodes, edges))
    assert {path: p.code for path, p in problems.items()} == {
        "nodes[1].id": ErrorCode.VALIDATION_FAILED,
        "nodes[2].type": ErrorCode.NODE_TYPE_NOT_FOUND,
        "nodes[3].parameters.ms": ErrorCode.INVALID_PARAMETERS,
        "edges[0].target": ErrorCode.VALIDATION_FAILED,
        "edges": ErrorCode.CIRCULAR_DEPENDENCY,
    }
    with pytest.raises(InvalidBlueprint) as caught:
        ensure_valid(blueprint(nodes, edges), registry)
    assert len(caught.value.problems) == 5
    assert "nodes[3].parameters.ms" in str(caught.value)


@pytest.mark.parametrize(
    ("node_type", "parameters"),
    [
        ("delay", {"ms": "{{$input.ms}}"}),
        ("delay", {"ms": "{{$vars.wait}}", "timeout": 5000}),
        ("edit-fields", {"values": "{{$input}}"}),
        ("edit-fields", {"values": {"when": "{{$now}}", "who": "{{$vars.user}}"}}),
        ("transform", {"limit": "{{$input.n}}", "operation": "limit"}),
    ],
)
def test_templates_are_not_rejected_statically(
    registry: NodeRegistry, node_type: str, parameters: dict[str, Any]
) -> None:
    assert problems_of(registry, [node("a", node_type, **parameters)]) == []


def test_other_parameters_are_still_checked_next_to_a_template(registry: NodeRegistry) -> None:
    (problem,) = problems_of(registry, [node("a", "delay", ms="{{$input.ms}}", timeout=-1)])
    assert problem.path == "nodes[0].parameters.timeout"


@pytest.mark.parametrize("flow", ["hello-world", "data-transform", "image-processor"])
def test_the_real_atomiton_flows_are_valid(registry: NodeRegistry, flow: str) -> None:
    assert validate(load_blueprint_file(FLOWS_DIR / f"{flow}.flow.yaml"), registry) == []


def test_a_required_parameter_given_as_a_templated_alias_is_left_to_run_time(
    registry: NodeRegistry,
) -> None:
    model = load_blueprint_text(
        "id: x\nname: X\nvariables: {p: {defaultValue: a.csv}}\nnodes:\n"
        '  - {id: s, type: spreadsheet, parameters: {filePath: "{{$vars.p}}"}}\n'
        "  - {id: f, type: file-system, parameters: {operation: read}}\n"
    )
    (problem,) = validate(model, registry)
    assert problem.path == "nodes[1].parameters.path"
    assert problem.message == "Field required"


def test_a_shell_command_may_not_hold_a_template(registry: NodeRegistry) -> None:
    model = load_blueprint_text(
        "id: s\nname: S\nnodes:\n"
        '  - {id: sh, type: shell-command, parameters: {command: "echo {{$input.x}}", args: ["{{$input.y}}"]}}\n'
    )
    (problem,) = validate(model, registry)
    assert problem.path == "nodes[0].parameters.command"
    assert "args" in problem.message


@pytest.mark.parametrize(
    ("node_type", "parameters", "field", "hint"),
    [
        ("sql", {"connection": "main", "query": "select {{$input.x}}"}, "query", "bound params"),
        ("shell-command", {"command": "echo {{$input}}"}, "command", "in args"),
    ],
)
def test_a_templated_literal_parameter_says_where_variable_parts_go(
    registry: NodeRegistry, node_type: str, parameters: dict[str, Any], field: str, hint: str
) -> None:
    found = by_path(problems_of(registry, [node("n", node_type, **parameters)]))
    problem = found[f"nodes[0].parameters.{field}"]
    assert "must be a literal value" in problem.message and hint in problem.message
