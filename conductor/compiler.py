"""Compile a validated Blueprint into an ExecutionPlan, flattening nested groups."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from conductor.loop_bodies import with_loop_bodies
from conductor.model.blueprint import Blueprint, BlueprintNode, Edge
from conductor.model.plan import (
    DEFAULT_PORT,
    GROUP_TYPE,
    ITEM_SOURCE,
    KEY_SEPARATOR,
    LOOP_TYPE,
    PARALLEL_TYPE,
    ExecutionPlan,
    PlannedNode,
    RateLimit,
    RunIf,
    Wire,
)
from conductor.model.timeouts import DEFAULT_TIMEOUT_MS
from nodes.containers import ENTRY_PORT


def compile_plan(
    blueprint: Blueprint, execution_id: str, inputs: Mapping[str, Any]
) -> ExecutionPlan:
    """The plan for one execution; `inputs` override the declared variables' defaults. A
    loop's `item` handle makes the nodes it feeds its body (see conductor.loop_bodies)."""
    variables = {name: var.defaultValue for name, var in blueprint.variables.items()}
    merged = {**variables, **inputs}
    nodes: dict[str, PlannedNode] = {}
    children, edges = with_loop_bodies(blueprint.nodes, blueprint.edges)
    # A Blueprint's own runIf (it is a group too) gates the nodes its inputs enter.
    gate = (RunIf(expression=blueprint.runIf, owner=blueprint.id),) if blueprint.runIf else ()
    sinks = _flatten(children, edges, "", [], nodes, settle=False, entry_run_if=gate)
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
    *,
    settle: bool,
    timeout_cap_ms: int | None = None,
    entry_run_if: tuple[RunIf, ...] = (),
) -> list[str]:
    """Add a group's children to `out`; return the keys of its sinks. `timeout_cap_ms` (a
    parallel's `operationTimeout`) caps each leaf child's `timeout`; the children the group's
    input enters check `entry_run_if` (the group's `runIf`) on it first."""
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
        node = _capped(child, timeout_cap_ms) if timeout_cap_ms and not child.nodes else child
        entry = not incoming[child.id]
        wires = incoming[child.id] or entry_wires
        inherited = entry_run_if if entry else ()
        _add_node(node, prefix + child.id, wires, out, settle=settle, run_if=inherited)
    has_outgoing = {edge.source for edge in edges}
    return [prefix + child.id for child in children if child.id not in has_outgoing]


def _add_node(
    node: BlueprintNode,
    key: str,
    wires: list[Wire],
    out: dict[str, PlannedNode],
    *,
    settle: bool,
    run_if: tuple[RunIf, ...] = (),
) -> None:
    parameters = dict(node.parameters)
    if node.runIf is not None:
        run_if = (*run_if, RunIf(expression=node.runIf, owner=key))
    # A group or parallel without children runs its own node (its input, or its operations).
    nests = node.type in (GROUP_TYPE, PARALLEL_TYPE) and bool(node.nodes)
    enabled = parameters.get("enabled", True) is not False
    collects: list[str] = []
    body: dict[str, PlannedNode] = {}
    body_sinks: list[str] = []
    if nests and enabled:
        children_settle = settle or (node.type == PARALLEL_TYPE and _parallel_settles(parameters))
        prefix = key + KEY_SEPARATOR
        cap = _operation_timeout(parameters) if node.type == PARALLEL_TYPE else None
        collects = _flatten(
            node.nodes,
            node.edges,
            prefix,
            wires,
            out,
            settle=children_settle,
            timeout_cap_ms=cap,
            entry_run_if=run_if,
        )
        run_if = ()  # checked by the children its input enters: the group itself collects
        wires = [
            *(Wire(source=sink, port=sink.rsplit(KEY_SEPARATOR, 1)[-1]) for sink in collects),
            *_entry_wires(wires),
        ]
    elif node.type == LOOP_TYPE and node.nodes:
        entry = [Wire(source=ITEM_SOURCE)]
        body_settle = settle or _loop_continues_on_error(parameters)
        body_sinks = _flatten(node.nodes, node.edges, "", entry, body, settle=body_settle)
    out[key] = PlannedNode(
        key=key,
        id=node.id,
        type=node.type,
        name=node.name,
        parameters=parameters,
        wires=wires,
        collects=collects,
        queue=node.queue,
        cache_ttl_s=node.cache.ttl_s if node.cache else None,
        rate_limit=_rate_limit(node),
        run_if=list(run_if),
        resources=node.resources,
        settle=settle,
        body=list(body.values()),
        body_sinks=body_sinks,
        children=len(node.nodes) if collects else 0,
    )


def _entry_wires(wires: list[Wire]) -> list[Wire]:
    """A container's wires from the nodes that feed its children, on reserved ports: their end
    says when its children could start (for `duration`, `totalExecutionTime`)."""
    sources = dict.fromkeys(wire.source for wire in wires)
    return [Wire(source=source, port=f"{ENTRY_PORT}{n}") for n, source in enumerate(sources)]


def _operation_timeout(parameters: dict[str, Any]) -> int | None:
    """A parallel's `operationTimeout` when given as a number: its children's time limit."""
    value = parameters.get("operationTimeout")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return max(1, int(value))


def _capped(child: BlueprintNode, cap_ms: int) -> BlueprintNode:
    """The child with its `timeout` at most `cap_ms` (a child's own smaller limit stays)."""
    own = child.parameters.get("timeout", DEFAULT_TIMEOUT_MS)
    limit = min(own, cap_ms) if isinstance(own, int) and not isinstance(own, bool) else cap_ms
    return child.model_copy(update={"parameters": {**child.parameters, "timeout": limit}})


def _parallel_settles(parameters: dict[str, Any]) -> bool:
    """Children's failures settle unless the strategy is `all` or `failFast` is on."""
    strategy = parameters.get("strategy", "allSettled")
    return strategy != "all" and parameters.get("failFast", False) is not True


def _loop_continues_on_error(parameters: dict[str, Any]) -> bool:
    """Atomiton's `continueOnError` (default true), or its inverse `breakOnError`."""
    if "continueOnError" in parameters:
        return parameters["continueOnError"] is not False
    return parameters.get("breakOnError", False) is not True


def _rate_limit(node: BlueprintNode) -> RateLimit | None:
    limit = node.rate_limit
    if limit is None:
        return None
    return RateLimit(key=limit.key or node.type, per_second=limit.per_second, burst=limit.burst)
