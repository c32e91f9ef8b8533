"""Compile a validated Blueprint into an ExecutionPlan, flattening nested groups."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from conductor.blueprint import Blueprint, BlueprintNode, Edge
from conductor.plan import DEFAULT_PORT, KEY_SEPARATOR, ExecutionPlan, PlannedNode, Wire
from conductor.validation import GROUP_TYPE


def compile_plan(
    blueprint: Blueprint, execution_id: str, inputs: Mapping[str, Any]
) -> ExecutionPlan:
    """The plan for one execution; `inputs` override the declared variables' defaults."""
    variables = {name: var.defaultValue for name, var in blueprint.variables.items()}
    merged = {**variables, **inputs}
    nodes: dict[str, PlannedNode] = {}
    sinks = _flatten(blueprint.nodes, blueprint.edges, "", [], nodes)
    return ExecutionPlan(
        execution_id=execution_id,
        blueprint_id=blueprint.id,
        blueprint_name=blueprint.name,
        blueprint_version=blueprint.version,
        inputs=merged,
        variables=merged,
        timeout_ms=blueprint.timeout_ms(),
        nodes=nodes,
        sinks=sinks,
    )


def _flatten(
    children: Sequence[BlueprintNode],
    edges: Sequence[Edge],
    prefix: str,
    entry_wires: list[Wire],
    out: dict[str, PlannedNode],
) -> list[str]:
    """Add a group's children to `out`; return the keys of its sinks."""
    incoming: dict[str, list[Wire]] = {child.id: [] for child in children}
    for edge in edges:
        incoming[edge.target].append(
            Wire(
                source=prefix + edge.source,
                source_handle=edge.sourceHandle,
                port=edge.targetHandle or DEFAULT_PORT,
            )
        )
    for child in children:
        _add_node(child, prefix + child.id, incoming[child.id] or entry_wires, out)
    has_outgoing = {edge.source for edge in edges}
    return [prefix + child.id for child in children if child.id not in has_outgoing]


def _add_node(
    node: BlueprintNode, key: str, wires: list[Wire], out: dict[str, PlannedNode]
) -> None:
    parameters = dict(node.parameters)
    is_group = node.type == GROUP_TYPE
    if is_group and not node.nodes:
        parameters["enabled"] = False  # an empty group has nothing to run: it passes through
    expand = is_group and parameters.get("enabled", True) is not False
    collects: list[str] = []
    if expand:
        collects = _flatten(node.nodes, node.edges, key + KEY_SEPARATOR, wires, out)
        wires = [Wire(source=sink, port=sink.rsplit(KEY_SEPARATOR, 1)[-1]) for sink in collects]
    out[key] = PlannedNode(
        key=key,
        id=node.id,
        type=node.type,
        name=node.name,
        parameters=parameters,
        wires=wires,
        collects=collects,
        queue=node.queue,
    )
