"""Breakpoints: which nodes of a plan a debugging run pauses before (docs/debugging.md).

A breakpoint names a node by its key (`group/child`), its Blueprint id (`child`), or, inside a
loop body, its key without item numbers (`each/double` matches `each#0/double`, `each#1/double`,
...): it holds before every node it matches, once per node key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from conductor.model.plan import ITEM_MARK, KEY_SEPARATOR, ExecutionPlan, PlannedNode
from conductor.model.problems import ErrorCode, InvalidBlueprint, Problem

MAX_BREAKPOINTS = 100
_ITEM_NUMBER = re.compile(re.escape(ITEM_MARK) + r"\d+")


class InvalidBreakpoints(InvalidBlueprint):
    """A breakpoint names no node of the Blueprint (problems at `breakpoints[i]`)."""


def template_key(key: str) -> str:
    """A node key without its loop item numbers (`each#3/double` -> `each/double`)."""
    return _ITEM_NUMBER.sub("", key)


def breakpoint_names(plan: ExecutionPlan) -> set[str]:
    """Every name a breakpoint may use for the plan's nodes, loop bodies included."""
    names: set[str] = set()
    for node in plan.nodes.values():
        names |= _names(node, "")
    return names


def _names(node: PlannedNode, prefix: str) -> set[str]:
    key = prefix + node.key
    names = {key, node.id, template_key(key)}
    for child in node.body:  # a loop's per-item template, keyed under the loop
        names |= _names(child, template_key(key) + KEY_SEPARATOR)
    return names


def with_breakpoints(plan: ExecutionPlan, breakpoints: Sequence[str]) -> ExecutionPlan:
    """`plan` holding before the nodes `breakpoints` name; InvalidBlueprint naming
    `breakpoints[i]` for a name that matches no node."""
    if not breakpoints:
        return plan
    problems = list(_problems(plan, breakpoints))
    if problems:
        raise InvalidBreakpoints(problems)
    return plan.model_copy(update={"breakpoints": list(dict.fromkeys(breakpoints))})


def _problems(plan: ExecutionPlan, breakpoints: Sequence[str]) -> Iterable[Problem]:
    if len(breakpoints) > MAX_BREAKPOINTS:
        message = f"at most {MAX_BREAKPOINTS} breakpoints, got {len(breakpoints)}"
        yield Problem(path="breakpoints", code=ErrorCode.VALIDATION_FAILED, message=message)
        return
    names = breakpoint_names(plan)
    for index, name in enumerate(breakpoints):
        if name not in names:
            known = ", ".join(sorted(names)[:10])
            message = f"no node {name!r} in the Blueprint to pause before (nodes: {known})"
            yield Problem(
                path=f"breakpoints[{index}]", code=ErrorCode.VALIDATION_FAILED, message=message
            )
