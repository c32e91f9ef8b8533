"""A loop's items as nodes of the execution (at run time), its items' outcomes, and what
container nodes learn about their children."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from conductor.model.plan import (
    GROUP_TYPE,
    KEY_SEPARATOR,
    PlannedNode,
    Wire,
    instantiate_item,
    item_key,
)
from nodes.base import settled_error, settled_failure
from nodes.branching import skipped_output
from nodes.containers import ENTRY_PORT, ITEM_PORT, ContainerRun
from nodes.group import group_failure
from storage.state import Expansion, NodeLoad, StateStore, now_ms
from workers.invocation import Invocation


@dataclass(frozen=True)
class ItemsToRun:
    """What the node task dispatches after an expansion: each item's nodes, on `lanes`."""

    loop: PlannedNode
    items: list[dict[str, PlannedNode]]
    lanes: int


def expand_items(loop: PlannedNode, items: list[Any]) -> Expansion:
    """Item nodes, item outputs, and the loop re-wired to collect every item's sinks."""
    nodes: list[PlannedNode] = []
    outputs: dict[str, str] = {}
    wires: list[Wire] = []
    entered_ms = now_ms()
    for index, item in enumerate(items):
        source = item_key(loop.key, index)
        outputs[source] = json.dumps({"result": item, "item": item, "index": index})
        nodes += instantiate_item(loop, index, entered_ms)
        wires += [
            Wire(source=source + KEY_SEPARATOR + sink, port=f"{index}{KEY_SEPARATOR}{sink}")
            for sink in loop.body_sinks
        ]
        wires.append(Wire(source=source, port=f"{ITEM_PORT}{index}"))  # the item, for records
    collecting = loop.model_copy(
        update={"wires": wires, "expanded": True, "entered_ms": entered_ms}
    )
    return Expansion(loop=collecting, nodes=nodes, item_outputs=outputs)


def items_to_run(expansion: Expansion, count: int, lanes: int) -> ItemsToRun:
    """Group the expansion's nodes by item, in item order."""
    per_item: list[dict[str, PlannedNode]] = [{} for _ in range(count)]
    prefix = expansion.loop.key
    for node in expansion.nodes:
        index = int(node.key[len(prefix) + 1 :].split(KEY_SEPARATOR, 1)[0])
        per_item[index][node.key] = node
    return ItemsToRun(loop=expansion.loop, items=per_item, lanes=lanes)


def item_outcomes(loop: PlannedNode, ports: Mapping[str, Any]) -> list[Any]:
    """Each item's outcome: the output of its one sink that ran (or the outputs by sink when
    several ran), or the settled failure of a sink; a skip when every sink was skipped (a
    skipped sink delivers nothing, see workers.invocation.arrange_inputs)."""
    count = sum(wire.port.startswith(ITEM_PORT) for wire in loop.wires)
    outcomes: list[Any] = []
    for index in range(count):
        ran = {
            sink: ports[port]
            for sink in loop.body_sinks
            if (port := f"{index}{KEY_SEPARATOR}{sink}") in ports
        }
        failed = next((out for out in ran.values() if settled_error(out)), None)
        if failed is not None:
            outcomes.append(failed)
        elif not ran:
            outcomes.append(skipped_output(f"every sink of item {index} was skipped"))
        elif len(ran) == 1:
            outcomes.append(next(iter(ran.values())))
        else:
            results = {sink: (out or {}).get("result") for sink, out in ran.items()}
            outcomes.append({"result": results, **ran})
    return outcomes


def with_container(
    call: Invocation, spec: PlannedNode, load: NodeLoad, state: StateStore, execution_id: str
) -> Invocation:
    """The call, with its context told about the children when the node is a container that
    ran some (a group, a parallel, a loop collecting its items)."""
    run = container_run(spec, load, state, execution_id)
    return call if run is None else replace(call, context=replace(call.context, container=run))


def container_run(
    spec: PlannedNode, load: NodeLoad, state: StateStore, execution_id: str
) -> ContainerRun | None:
    """When the container's children could start: the end of the nodes feeding them, else
    when its loop item was expanded, else (it starts the execution) the execution's start."""
    if spec.expanded:
        return ContainerRun(entered_ms=spec.entered_ms or now_ms())
    if not spec.collects:
        return None
    ends = [
        load.upstream_finished_ms.get(wire.source, 0)
        for wire in spec.wires
        if wire.port.startswith(ENTRY_PORT)
    ]
    entered = max(ends, default=0) or spec.entered_ms
    if not entered:  # rare: only containers that start the execution read its meta
        meta = state.snapshot(execution_id, []).execution
        entered = (meta.began_ms if meta is not None else None) or now_ms()
    return ContainerRun(entered_ms=entered, children=spec.children)


def settled_output(
    spec: PlannedNode, error: dict[str, Any], load: NodeLoad, state: StateStore, execution_id: str
) -> dict[str, Any]:
    """A settled failure that reached this node; a group's also says which child failed."""
    failure = settled_failure(error)
    run = container_run(spec, load, state, execution_id) if spec.type == GROUP_TYPE else None
    return failure if run is None else {**failure, **group_failure(spec.id, error, run)}
