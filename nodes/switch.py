"""`switch`: send the node's input on the handle of the first case that matches (or of every
case that matches), else on its fallback handle; the nodes on the other branches are
skipped."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from nodes.base import NodeContext, NodeParameters
from nodes.branching import BranchingNode, branch_output
from nodes.js_expressions import (
    MAX_EXPRESSION_CHARS,
    as_condition,
    condition_scope,
    evaluate_all,
    same_value,
)

DEFAULT_HANDLE = "default"
MAX_CASES = 100


class SwitchCase(BaseModel):
    """One case: its output handle, and a JavaScript condition (`when`) or a value the
    switch's `value` must equal (`equals`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    output: str = Field(min_length=1, max_length=200, description="The handle it selects")
    when: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_EXPRESSION_CHARS,
        description="A JavaScript condition over $input, $inputs and $vars",
    )
    equals: Any = Field(default=None, description="A JSON value `value` must equal")

    @model_validator(mode="after")
    def _one_test(self) -> SwitchCase:
        if (self.when is None) == ("equals" not in self.model_fields_set):
            raise ValueError("give exactly one of `when` and `equals`")
        return self


class SwitchParameters(NodeParameters):
    """Parameters of `switch`."""

    value: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_EXPRESSION_CHARS,
        description="A JavaScript expression the cases' `equals` are compared with",
    )
    cases: list[SwitchCase] = Field(min_length=1, max_length=MAX_CASES)
    fallbackOutput: str = Field(
        default=DEFAULT_HANDLE,
        min_length=1,
        max_length=200,
        description="The handle taken when no case matches",
    )
    allMatches: bool = Field(
        default=False, description="Take every matching case's handle, not only the first"
    )

    @model_validator(mode="after")
    def _value_for_equals(self) -> SwitchParameters:
        if self.value is None and any("equals" in case.model_fields_set for case in self.cases):
            raise ValueError("a case with `equals` needs the switch's `value` expression")
        return self


class SwitchNode(BranchingNode[SwitchParameters]):
    """Output: `result` is the node's input, `$branches` the handles it took. Edges from the
    other handles deliver nothing: their targets are skipped."""

    type_name = "switch"
    description = "Take the branch of the first matching case (or every one), else a fallback"
    parameters_model = SwitchParameters
    # Code: written in the Blueprint, never built from data by templates or input ports.
    literal_parameters = frozenset({"value", "cases"})
    self_rendered_parameters = frozenset({"value", "cases"})

    def run(self, params: SwitchParameters, context: NodeContext) -> Mapping[str, Any]:
        scope = condition_scope(context.data, context.inputs, context.variables)
        found = evaluate_all(_expressions(params), scope, context.remaining_s())
        value = found.pop(0) if params.value is not None else None
        tests = iter(found)
        matched = [
            case.output
            for case in params.cases
            if (next(tests) if case.when is not None else same_value(value, case.equals))
        ]
        chosen = list(dict.fromkeys(matched if params.allMatches else matched[:1]))
        return branch_output(context.data, chosen or [params.fallbackOutput])

    @classmethod
    def handles(cls, parameters: Mapping[str, Any]) -> list[str]:
        """Every case's output, and the fallback."""
        cases = parameters.get("cases")
        found = [
            case["output"]
            for case in (cases if isinstance(cases, list) else [])
            if isinstance(case, Mapping) and isinstance(case.get("output"), str)
        ]
        fallback = parameters.get("fallbackOutput", DEFAULT_HANDLE)
        return list(dict.fromkeys([*found, fallback if isinstance(fallback, str) else ""]))

    @classmethod
    def expressions(cls, parameters: Mapping[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
        """`value` and each case's `when`."""
        found: list[tuple[tuple[str | int, ...], str]] = []
        if isinstance(parameters.get("value"), str):
            found.append((("value",), parameters["value"]))
        cases = parameters.get("cases")
        for index, case in enumerate(cases if isinstance(cases, list) else []):
            if isinstance(case, Mapping) and isinstance(case.get("when"), str):
                found.append((("cases", index, "when"), case["when"]))
        return found


def _expressions(params: SwitchParameters) -> list[tuple[str, str]]:
    """What to evaluate, labelled by path: `value` first, then each case's `when`."""
    found = [("value", params.value)] if params.value is not None else []
    found += [
        (f"cases[{index}].when", as_condition(case.when))
        for index, case in enumerate(params.cases)
        if case.when is not None
    ]
    return found
