"""Validation of conditions: every `runIf` and every expression of an `if` or `switch` parses
as JavaScript, and every edge from an `if` or `switch` names one of its output handles."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from conductor.model.blueprint import BlueprintNode, Edge
from conductor.model.problems import ErrorCode, Problem, join_path
from nodes.branching import BranchingNode
from nodes.js_expressions import parse_problem
from nodes.registry import NodeRegistry

Path = tuple[str | int, ...]


def condition_problems(
    nodes: Sequence[BlueprintNode],
    edges: Sequence[Edge],
    registry: NodeRegistry,
    at: Path = (),
    *,
    root: bool = False,
) -> list[Problem]:
    """The problems with one group's conditions and branch edges, nested groups included;
    `root`: `nodes` is the Blueprint itself (its fields sit at the top of the paths)."""
    problems: list[Problem] = []
    for index, node in enumerate(nodes):
        node_at = at if root else (*at, "nodes", index)
        if node.runIf is not None:
            problems += _unparsed((*node_at, "runIf"), node.runIf, ErrorCode.VALIDATION_FAILED)
        branching = _branching(node, registry)
        if branching is not None:
            for where, source in branching.expressions(node.parameters):
                path = (*node_at, "parameters", *where)
                problems += _unparsed(path, source, ErrorCode.INVALID_PARAMETERS)
        problems += condition_problems(node.nodes, node.edges, registry, node_at)
    return problems + _branch_edges(nodes, edges, registry, at)


def _branching(node: BlueprintNode, registry: NodeRegistry) -> type[BranchingNode[Any]] | None:
    """The node's type when it is a branching one."""
    if node.type not in registry:
        return None
    node_type = registry.get(node.type)
    return node_type if issubclass(node_type, BranchingNode) else None


def _unparsed(path: Path, source: str, code: ErrorCode) -> list[Problem]:
    why = parse_problem(source)
    if why is None:
        return []
    return [Problem(path=join_path(*path), code=code, message=f"does not parse: {why}")]


def _branch_edges(
    nodes: Sequence[BlueprintNode], edges: Sequence[Edge], registry: NodeRegistry, at: Path
) -> list[Problem]:
    """Each edge from a branching node names one of the node's handles."""
    by_id = {node.id: node for node in nodes}
    problems: list[Problem] = []
    for index, edge in enumerate(edges):
        source = by_id.get(edge.source)
        branching = _branching(source, registry) if source is not None else None
        if source is None or branching is None:
            continue
        handles = branching.handles(source.parameters)
        if edge.sourceHandle in handles:
            continue
        listed = ", ".join(handles)
        if edge.sourceHandle is None:
            message = f"an edge from {source.type} node {source.id!r} names no branch: {listed}"
        else:
            message = (
                f"{source.type} node {source.id!r} has no handle {edge.sourceHandle!r}; "
                f"its handles: {listed}"
            )
        path = join_path(*at, "edges", index, "sourceHandle")
        problems.append(Problem(path=path, code=ErrorCode.VALIDATION_FAILED, message=message))
    return problems
