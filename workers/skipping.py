"""When a node is skipped instead of run: nothing arrived on its inputs (every node feeding it
was skipped, or is a branch its node did not take), or its `runIf` is false."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from conductor.model.plan import PlannedNode, Wire
from nodes.branching import BRANCHES, BranchingNode, delivers, disabled_branches, skip_reason
from nodes.containers import ENTRY_PORT, ITEM_PORT
from nodes.js_expressions import as_condition, condition_scope, evaluate_all
from nodes.registry import NodeRegistry

MAX_REASONS = 3  # wires described in a skip reason
MAX_SHOWN_CHARS = 200  # of a runIf expression, in a skip reason


def nothing_arrived(spec: PlannedNode, outputs: Mapping[str, Any]) -> str | None:
    """Why the node is skipped when none of its wires delivers, else None. A node with no
    wires (it gets the execution's inputs) always runs, and so does a loop collecting its
    items; a container's reserved ports (when its children could start) do not count."""
    if spec.expanded:
        return None
    wires = [wire for wire in spec.wires if not wire.port.startswith((ENTRY_PORT, ITEM_PORT))]
    if not wires or any(delivers(outputs.get(w.source), w.source_handle) for w in wires):
        return None
    why = [_undelivered(wire, outputs.get(wire.source)) for wire in wires[:MAX_REASONS]]
    more = f"; and {len(wires) - MAX_REASONS} more" if len(wires) > MAX_REASONS else ""
    return "nothing arrived: " + "; ".join(why) + more


def _undelivered(wire: Wire, output: Any) -> str:
    """Why one wire delivered nothing."""
    if skip_reason(output) is not None:
        return f"{wire.source!r} was skipped"
    taken = ", ".join(map(repr, output.get(BRANCHES, []))) if isinstance(output, dict) else ""
    return f"branch {wire.source_handle!r} of {wire.source!r} not taken (took {taken or 'none'})"


def disabled_output(spec: PlannedNode, data: Any, registry: NodeRegistry) -> dict[str, Any]:
    """A disabled node passes its input on; a disabled `if` or `switch` on its first handle."""
    node_type = registry.get(spec.type) if spec.type in registry else None
    if node_type is not None and issubclass(node_type, BranchingNode):
        return disabled_branches(node_type.handles(spec.parameters), data)
    return {"result": data}


def run_if_reason(
    spec: PlannedNode,
    data: Any,
    ports: Mapping[str, Any],
    variables: Mapping[str, Any],
    time_limit_s: float,
) -> str | None:
    """Why the node is skipped when a `runIf` it checks (a group's, then its own) is false,
    else None; one that throws raises a ScriptError naming it."""
    scope = condition_scope(data, ports, variables)
    for condition in spec.run_if:  # one by one: a false group condition stops the rest
        own = condition.owner == spec.key
        label = "runIf" if own else f"runIf of {condition.owner!r}"
        (holds,) = evaluate_all([(label, as_condition(condition.expression))], scope, time_limit_s)
        if not holds:
            shown = condition.expression.strip()
            if len(shown) > MAX_SHOWN_CHARS:
                shown = shown[:MAX_SHOWN_CHARS] + "..."
            return f"{label} is false: {shown}"
    return None
