"""`if`: send the node's input on its `true` or its `false` handle, by a JavaScript
condition; the nodes on the other branch are skipped."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from nodes.base import NodeContext, NodeParameters
from nodes.branching import BranchingNode, branch_output
from nodes.js_expressions import (
    MAX_EXPRESSION_CHARS,
    as_condition,
    condition_scope,
    evaluate_all,
)

TRUE_HANDLE = "true"
FALSE_HANDLE = "false"


class IfParameters(NodeParameters):
    """Parameters of `if`."""

    condition: str = Field(
        min_length=1,
        max_length=MAX_EXPRESSION_CHARS,
        description="A JavaScript expression over $input, $inputs and $vars, e.g. "
        "`$input.amount > 100`: truthy takes the `true` handle, falsy the `false` one",
    )


class IfNode(BranchingNode[IfParameters]):
    """Output: `result` is the node's input, `$branches` the handle it took (`true` or
    `false`). Edges from the other handle deliver nothing: their targets are skipped."""

    type_name = "if"
    description = "Take the `true` or the `false` branch by a JavaScript condition"
    parameters_model = IfParameters
    # Code: written in the Blueprint, never built from data by templates or input ports.
    literal_parameters = frozenset({"condition"})
    self_rendered_parameters = frozenset({"condition"})

    def run(self, params: IfParameters, context: NodeContext) -> Mapping[str, Any]:
        scope = condition_scope(context.data, context.inputs, context.variables)
        (holds,) = evaluate_all(
            [("condition", as_condition(params.condition))], scope, context.remaining_s()
        )
        return branch_output(context.data, [TRUE_HANDLE if holds else FALSE_HANDLE])

    @classmethod
    def handles(cls, parameters: Mapping[str, Any]) -> list[str]:
        """`true` and `false`."""
        return [TRUE_HANDLE, FALSE_HANDLE]

    @classmethod
    def expressions(cls, parameters: Mapping[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
        """The condition."""
        condition = parameters.get("condition")
        return [(("condition",), condition)] if isinstance(condition, str) else []
