"""`group`: a nested Blueprint. Its children run as nodes of the same execution; the group
node itself runs after them and collects their outputs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ConfigDict

from nodes.base import Node, NodeContext, NodeParameters


class GroupParameters(NodeParameters):
    """Parameters of `group` (Atomiton's `parallel` flag is accepted; children always run as
    soon as their inputs are ready)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    parallel: bool = False


class GroupNode(Node[GroupParameters]):
    """Output: the one sink child's output; with several sink children, `result` maps each
    child id to its result and each child's whole output sits under its id too (a child
    called `result` is found in the `result` map only)."""

    type_name = "group"
    description = "A nested Blueprint whose children run inside the same execution"
    parameters_model = GroupParameters

    def run(self, params: GroupParameters, context: NodeContext) -> Mapping[str, Any]:
        children = dict(context.inputs)
        if len(children) == 1:
            (only,) = children.values()
            return only if isinstance(only, dict) and "result" in only else {"result": only}
        results = {
            child: out.get("result") if isinstance(out, dict) else out
            for child, out in children.items()
        }
        return {**children, "result": results}
