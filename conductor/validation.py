"""Blueprint validation: every problem, each with its path, before anything is queued."""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Sequence

from pydantic import AliasChoices, BaseModel, ValidationError

from conductor.condition_checks import condition_problems
from conductor.model.admission import max_running_problem
from conductor.model.blueprint import Blueprint, BlueprintNode, Edge
from conductor.model.graph import find_cycle
from conductor.model.plan import GROUP_TYPE, KEY_SEPARATOR, LOOP_TYPE, PARALLEL_TYPE
from conductor.model.problems import ErrorCode, InvalidBlueprint, Problem, join_path
from nodes.base import BASE_PARAMETERS
from nodes.registry import NodeRegistry
from nodes.templates import has_template

CONTAINER_TYPES = frozenset({GROUP_TYPE, LOOP_TYPE, PARALLEL_TYPE})

# Node fields the Atomiton editor writes for itself: accepted, kept, never read.
EDITOR_NODE_FIELDS = frozenset(
    {
        "version", "metadata", "position", "inputPorts", "outputPorts", "description",
        "category", "icon", "label", "data", "width", "height", "measured", "selected",
        "dragging", "positionAbsolute", "style", "className", "hidden", "zIndex", "parentId",
    }
)  # fmt: skip
NODE_FIELDS = frozenset(BlueprintNode.model_fields)
# Conductor's, beside `parameters`
NODE_OPTIONS = frozenset({"queue", "cache", "rate_limit", "runIf", "resources"})


def validate(
    blueprint: Blueprint, registry: NodeRegistry, *, strict: bool = False
) -> list[Problem]:
    """All problems with the Blueprint, nested groups included; empty means valid. Strict:
    unknown node fields and parameters are problems too, not warnings."""
    problems = _validate_group(blueprint.nodes, blueprint.edges, registry, ())
    problems += condition_problems([blueprint], [], registry, root=True)
    concurrency = max_running_problem(blueprint.settings)
    if concurrency is not None:
        problems.append(_problem(("settings", "concurrency", "maxRunning"), concurrency))
    return problems + find_warnings(blueprint, registry) if strict else problems


def ensure_valid(
    blueprint: Blueprint, registry: NodeRegistry, *, strict: bool = False
) -> list[Problem]:
    """Raise InvalidBlueprint with every problem, if there is any; else return the warnings."""
    problems = validate(blueprint, registry, strict=strict)
    if problems:
        raise InvalidBlueprint(problems)
    return [] if strict else find_warnings(blueprint, registry)


def find_warnings(blueprint: Blueprint, registry: NodeRegistry) -> list[Problem]:
    """Unknown node fields and unknown parameters: ignored at run time, as Atomiton does."""
    found: list[Problem] = []
    for node, at in _walk(blueprint.nodes, ()):
        found += _unknown_fields(node, at)
        if node.type in registry:
            found += _unknown_parameters(node, registry, at)
    return found


def _walk(
    nodes: Sequence[BlueprintNode], at: tuple[str | int, ...]
) -> Iterator[tuple[BlueprintNode, tuple[str | int, ...]]]:
    for index, node in enumerate(nodes):
        node_at = (*at, "nodes", index)
        yield node, node_at
        yield from _walk(node.nodes, node_at)


def _unknown_fields(node: BlueprintNode, at: tuple[str | int, ...]) -> list[Problem]:
    unknown = sorted(set(node.model_extra or {}) - EDITOR_NODE_FIELDS - BASE_PARAMETERS)
    return [
        _problem((*at, key), f"unknown node field, ignored{_hint(key, NODE_FIELDS)}")
        for key in unknown
    ]


def _unknown_parameters(
    node: BlueprintNode, registry: NodeRegistry, at: tuple[str | int, ...]
) -> list[Problem]:
    node_type = registry.get(node.type)
    known = node_type.parameter_names() | node_type.editor_parameters
    return [
        Problem(
            path=join_path(*at, "parameters", key),
            code=ErrorCode.INVALID_PARAMETERS,
            message=f"unknown parameter of {node.type}, ignored{_hint(key, known)}",
        )
        for key in sorted(set(node.parameters) - known - NODE_OPTIONS)
    ]


def _hint(key: str, known: frozenset[str]) -> str:
    close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _misplaced(
    node: BlueprintNode, registry: NodeRegistry, at: tuple[str | int, ...]
) -> list[Problem]:
    """Base parameters written beside `parameters`, and node options written inside it."""
    extra = node.model_extra or {}
    problems = [
        _problem(
            (*at, key),
            f"{key!r} is a parameter: write it as {join_path(*at, 'parameters', key)}",
        )
        for key in sorted(BASE_PARAMETERS & set(extra) - EDITOR_NODE_FIELDS)
    ]
    names = registry.get(node.type).parameter_names() if node.type in registry else frozenset()
    problems += [
        _problem(
            (*at, "parameters", key),
            f"{key!r} is a node option, not a parameter: write it beside `parameters`",
        )
        for key in sorted(NODE_OPTIONS & set(node.parameters) - names)
    ]
    return problems


def _validate_group(
    nodes: Sequence[BlueprintNode],
    edges: Sequence[Edge],
    registry: NodeRegistry,
    at: tuple[str | int, ...],
) -> list[Problem]:
    problems: list[Problem] = []
    first_index: dict[str, int] = {}
    for index, node in enumerate(nodes):
        node_at = (*at, "nodes", index)
        if node.id in first_index:
            problems.append(
                _problem(
                    (*node_at, "id"),
                    f"duplicate id {node.id!r} (first used at "
                    f"{join_path(*at, 'nodes', first_index[node.id])})",
                )
            )
        else:
            first_index[node.id] = index
        if KEY_SEPARATOR in node.id:
            problems.append(_problem((*node_at, "id"), f"ids may not contain {KEY_SEPARATOR!r}"))
        problems += _validate_node(node, registry, node_at)
    problems += _validate_edges(edges, set(first_index), at)
    cycle = find_cycle(first_index, [(edge.source, edge.target) for edge in edges])
    if cycle:
        problems.append(
            Problem(
                path=join_path(*at, "edges"),
                code=ErrorCode.CIRCULAR_DEPENDENCY,
                message="cycle " + " -> ".join(cycle),
            )
        )
    return problems


def _validate_node(
    node: BlueprintNode, registry: NodeRegistry, at: tuple[str | int, ...]
) -> list[Problem]:
    if node.type not in registry:
        known = ", ".join(registry.names())
        return [
            Problem(
                path=join_path(*at, "type"),
                code=ErrorCode.NODE_TYPE_NOT_FOUND,
                message=f"unknown node type {node.type!r}; known types: {known}",
            )
        ]
    problems = _misplaced(node, registry, at) + _validate_parameters(node, registry, at)
    if node.type in CONTAINER_TYPES:
        problems += _validate_group(node.nodes, node.edges, registry, at)
        if node.resources is not None and node.nodes:
            message = "a container's children run as nodes of their own: limit them instead"
            problems.append(_problem((*at, "resources"), message))
    elif node.nodes or node.edges:
        kinds = ", ".join(sorted(CONTAINER_TYPES))
        problems.append(_problem((*at, "nodes"), f"only nodes of type {kinds} may hold nodes"))
    return problems


def _validate_parameters(
    node: BlueprintNode, registry: NodeRegistry, at: tuple[str | int, ...]
) -> list[Problem]:
    node_type = registry.get(node.type)
    model = node_type.parameters_model
    templated_base = [
        Problem(
            path=join_path(*at, "parameters", name),
            code=ErrorCode.INVALID_PARAMETERS,
            message="must be a literal value: the dispatcher needs it before the node runs",
        )
        for name in sorted(BASE_PARAMETERS)
        if has_template(node.parameters.get(name))
    ] + [
        Problem(
            path=join_path(*at, "parameters", name),
            code=ErrorCode.INVALID_PARAMETERS,
            message=f"must be a literal value for {node.type} ({node_type.variable_parts_hint})",
        )
        for name in sorted(node_type.literal_parameters)
        if has_template(node.parameters.get(name))
    ]
    if templated_base:
        return templated_base
    # A template is only known at run time: check the other parameters now, the rest then.
    static = {key: value for key, value in node.parameters.items() if not has_template(value)}
    try:
        model.model_validate(static)
    except ValidationError as exc:
        return [
            Problem(
                path=join_path(*at, "parameters", *err["loc"]),
                code=ErrorCode.INVALID_PARAMETERS,
                message=err["msg"],
            )
            for err in exc.errors()
            if not (err["type"] == "missing" and _given_as_template(model, err["loc"], node))
        ]
    return []


def _given_as_template(
    model: type[BaseModel], loc: tuple[int | str, ...], node: BlueprintNode
) -> bool:
    """A missing field that the Blueprint does give, under its name or an alias, as a
    template (checked once the template is rendered, before the node runs)."""
    if not loc or not isinstance(loc[0], str):
        return False
    field = model.model_fields.get(loc[0])
    names = {loc[0]}
    alias = field.validation_alias if field else None
    if isinstance(alias, str):
        names.add(alias)
    elif isinstance(alias, AliasChoices):
        names |= {choice for choice in alias.choices if isinstance(choice, str)}
    return any(name in node.parameters for name in names)


def _validate_edges(
    edges: Sequence[Edge], ids: set[str], at: tuple[str | int, ...]
) -> list[Problem]:
    problems: list[Problem] = []
    for index, edge in enumerate(edges):
        for end in ("source", "target"):
            node_id = getattr(edge, end)
            if node_id not in ids:
                problems.append(
                    _problem((*at, "edges", index, end), f"no node {node_id!r} in this group")
                )
    return problems


def _problem(at: tuple[str | int, ...], message: str) -> Problem:
    return Problem(path=join_path(*at), code=ErrorCode.VALIDATION_FAILED, message=message)
