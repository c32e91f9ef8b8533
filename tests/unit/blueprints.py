"""Small builders for Blueprint data in unit tests."""

from __future__ import annotations

import itertools
from typing import Any

from conductor.model.blueprint import Blueprint
from conductor.model.loader import blueprint_from_data


def node(node_id: str, node_type: str = "delay", **parameters: Any) -> dict[str, Any]:
    """A node as the editor writes it."""
    return {"id": node_id, "type": node_type, "parameters": parameters}


def group(
    node_id: str,
    nodes: list[dict[str, Any]],
    edges: list[dict[str, Any]] | None = None,
    **parameters: Any,
) -> dict[str, Any]:
    """A nested group node."""
    return {
        "id": node_id,
        "type": "group",
        "parameters": parameters,
        "nodes": nodes,
        "edges": edges or [],
    }


def edge(source: str, target: str, **handles: str) -> dict[str, Any]:
    """An edge; `handles` may hold sourceHandle and targetHandle."""
    return {"id": f"{source}->{target}", "source": source, "target": target, **handles}


def chain_edges(*ids: str) -> list[dict[str, Any]]:
    """Edges a -> b -> c ... through `ids`."""
    return [edge(a, b) for a, b in itertools.pairwise(ids)]


def blueprint(
    nodes: list[dict[str, Any]], edges: list[dict[str, Any]] | None = None, **extra: Any
) -> Blueprint:
    """A Blueprint model with the given nodes and edges."""
    data = {"id": "bp-1", "name": "Test Blueprint", "nodes": nodes, "edges": edges or [], **extra}
    return blueprint_from_data(data)
