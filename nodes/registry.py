"""The node registry: explicit registration, loud failures, entry-point plugins."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from importlib.metadata import entry_points
from typing import Any

from nodes.base import Node
from nodes.blueprint_node import BlueprintNode
from nodes.delay import DelayNode
from nodes.edit_fields import EditFieldsNode
from nodes.errors import DuplicateNodeType, UnknownNodeType
from nodes.file_system import FileSystemNode
from nodes.group import GroupNode
from nodes.http_request import HttpRequestNode
from nodes.if_node import IfNode
from nodes.image import ImageNode
from nodes.loop import LoopNode
from nodes.parallel import ParallelNode
from nodes.shell_command import ShellCommandNode
from nodes.spreadsheet import SpreadsheetNode
from nodes.sql import SqlNode
from nodes.switch import SwitchNode
from nodes.transform import TransformNode
from nodes.wait_for_signal import WaitForSignalNode

ENTRY_POINT_GROUP = "conductor.nodes"

NodeType = type[Node[Any]]


class NodeRegistry:
    """Node types by name."""

    def __init__(self, types: Iterable[NodeType] = ()) -> None:
        self._types: dict[str, NodeType] = {}
        for node_type in types:
            self.register(node_type)

    def register(self, node_type: NodeType) -> None:
        """Add a node type; a second type with the same name raises."""
        name = node_type.type_name
        existing = self._types.get(name)
        if existing is not None:
            raise DuplicateNodeType(
                f"node type {name!r} is registered twice: by {_where(existing)} "
                f"and by {_where(node_type)}"
            )
        self._types[name] = node_type

    def get(self, name: str) -> NodeType:
        """The node type called `name`; an unknown name raises, listing the known ones."""
        try:
            return self._types[name]
        except KeyError:
            known = ", ".join(sorted(self._types))
            raise UnknownNodeType(f"unknown node type {name!r}; known types: {known}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def __iter__(self) -> Iterator[NodeType]:
        return iter(sorted(self._types.values(), key=lambda t: t.type_name))

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        return sorted(self._types)


def _where(node_type: NodeType) -> str:
    return f"{node_type.__module__}.{node_type.__qualname__}"


def builtin_node_types() -> list[NodeType]:
    """The node types that ship with Conductor."""
    return [
        BlueprintNode,
        DelayNode,
        EditFieldsNode,
        FileSystemNode,
        GroupNode,
        HttpRequestNode,
        IfNode,
        ImageNode,
        LoopNode,
        ParallelNode,
        ShellCommandNode,
        SpreadsheetNode,
        SqlNode,
        SwitchNode,
        TransformNode,
        WaitForSignalNode,
    ]


def plugin_node_types() -> list[NodeType]:
    """Node types that installed packages declare in the `conductor.nodes` entry-point group."""
    found: list[NodeType] = []
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        loaded = entry.load()
        if not (isinstance(loaded, type) and issubclass(loaded, Node)):
            raise TypeError(f"entry point {entry.name!r} ({entry.value}) is not a Node subclass")
        if loaded.type_name != entry.name:
            raise ValueError(
                f"entry point {entry.name!r} loads node type {loaded.type_name!r}; "
                "the names must match"
            )
        found.append(loaded)
    return found


def default_registry() -> NodeRegistry:
    """Built-in node types plus every installed plugin."""
    return NodeRegistry([*builtin_node_types(), *plugin_node_types()])
