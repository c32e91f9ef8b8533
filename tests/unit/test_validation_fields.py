"""conductor/validation.py: node fields are checked like parameters. Base parameters written
beside `parameters` and node options written inside it are refused with where they go;
unknown fields warn (strict: refuse); the editor's own fields never warn."""

from __future__ import annotations

from typing import Any

from conductor.model.problems import InvalidBlueprint
from conductor.validation import ensure_valid, find_warnings, validate
from nodes.registry import NodeRegistry
from tests.unit.blueprints import blueprint


def one_node(**fields: Any) -> dict[str, Any]:
    return {"id": "a", "type": "delay", "parameters": {"ms": 1}, **fields}


def test_base_parameters_beside_parameters_are_refused_naming_where_they_go(
    registry: NodeRegistry,
) -> None:
    model = blueprint([one_node(retries=2, timeout="soon", enabled=False)])
    messages = {p.path: p.message for p in validate(model, registry)}
    assert messages == {
        "nodes[0].enabled": "'enabled' is a parameter: write it as nodes[0].parameters.enabled",
        "nodes[0].retries": "'retries' is a parameter: write it as nodes[0].parameters.retries",
        "nodes[0].timeout": "'timeout' is a parameter: write it as nodes[0].parameters.timeout",
    }


def test_node_options_inside_parameters_are_refused(registry: NodeRegistry) -> None:
    node = one_node()
    node["parameters"] = {"ms": 1, "queue": "io", "cache": True, "rate_limit": {"per_second": 1}}
    problems = validate(blueprint([node]), registry)
    assert sorted(p.path for p in problems) == [
        "nodes[0].parameters.cache",
        "nodes[0].parameters.queue",
        "nodes[0].parameters.rate_limit",
    ]
    assert all("node option, not a parameter" in p.message for p in problems)


def test_unknown_node_fields_warn_with_the_closest_name(registry: NodeRegistry) -> None:
    model = blueprint([one_node(colour="red", queu="io")])
    assert validate(model, registry) == []
    warned = {p.path: p.message for p in find_warnings(model, registry)}
    assert warned == {
        "nodes[0].colour": "unknown node field, ignored",
        "nodes[0].queu": "unknown node field, ignored; did you mean 'queue'?",
    }
    assert sorted(p.path for p in validate(model, registry, strict=True)) == sorted(warned)


def test_editor_fields_never_warn(registry: NodeRegistry) -> None:
    editor = {
        "position": {"x": 1, "y": 2},
        "inputPorts": [],
        "outputPorts": [],
        "metadata": {"icon": "x"},
        "version": "1.0.0",
        "description": "d",
        "label": "l",
        "category": "data",
    }
    model = blueprint([one_node(**editor)])
    assert ensure_valid(model, registry, strict=True) == []


def test_warnings_reach_into_nested_groups(registry: NodeRegistry) -> None:
    inner = one_node(colour="red")
    outer = {"id": "g", "type": "group", "nodes": [inner], "edges": []}
    (warning,) = ensure_valid(blueprint([outer]), registry)
    assert warning.path == "nodes[0].nodes[0].colour"
    try:
        ensure_valid(blueprint([outer]), registry, strict=True)
    except InvalidBlueprint as exc:
        assert [p.path for p in exc.problems] == ["nodes[0].nodes[0].colour"]
    else:
        raise AssertionError("strict validation accepted an unknown field")
