"""Branches and skips in node outputs: which output handles a branching node (`if`, `switch`)
chose, and the output of a node that was skipped (a branch not taken, a false `runIf`).

Both are reserved keys of the output mapping, as a settled failure's `$error` is: a wire from
a handle the node did not choose delivers nothing, nor does a wire from a skipped node.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

from nodes.base import Node, P

BRANCHES = "$branches"
SKIPPED = "$skipped"


def branch_output(data: Any, branches: Sequence[str]) -> dict[str, Any]:
    """A branching node's output: its input goes on, on the `branches` handles only."""
    return {"result": data, BRANCHES: list(branches)}


def skipped_output(reason: str) -> dict[str, Any]:
    """The output of a node that was skipped: nothing goes on from it."""
    return {"result": None, SKIPPED: reason}


def skip_reason(output: Any) -> str | None:
    """Why the node whose output this is was skipped, or None when it was not."""
    if isinstance(output, Mapping) and isinstance(output.get(SKIPPED), str):
        return str(output[SKIPPED])
    return None


def delivers(output: Any, handle: str | None) -> bool:
    """Whether a wire from `handle` of a node with this output delivers: not when the node was
    skipped, nor when it chose branches and `handle` names another one. (Validation makes
    every edge from a branching node name a handle.)"""
    if skip_reason(output) is not None:
        return False
    if handle is None or not isinstance(output, Mapping):
        return True
    branches = output.get(BRANCHES)
    return not isinstance(branches, list) or handle in branches


def disabled_branches(handles: Sequence[str], data: Any) -> dict[str, Any]:
    """A disabled branching node's output: its input goes on, on its first handle (as a
    deactivated n8n node's does on its first output)."""
    return branch_output(data, list(handles[:1]))


class BranchingNode(Node[P]):
    """A node whose output handles select where its input goes: every edge from it names one
    of `handles` as its `sourceHandle` (validation checks it)."""

    @classmethod
    @abstractmethod
    def handles(cls, parameters: Mapping[str, Any]) -> list[str]:
        """The output handles a node with these (raw) parameters has."""

    @classmethod
    @abstractmethod
    def expressions(cls, parameters: Mapping[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
        """Each JavaScript expression in the (raw) parameters, with its path in `parameters`."""
