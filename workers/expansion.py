"""A loop's items as nodes of the execution (at run time), and its items' outcomes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from conductor.plan import KEY_SEPARATOR, PlannedNode, Wire, instantiate_item, item_key
from nodes.base import settled_error
from storage.state import Expansion


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
    for index, item in enumerate(items):
        source = item_key(loop.key, index)
        outputs[source] = json.dumps({"result": item, "item": item, "index": index})
        nodes += instantiate_item(loop, index)
        wires += [
            Wire(source=source + KEY_SEPARATOR + sink, port=f"{index}{KEY_SEPARATOR}{sink}")
            for sink in loop.body_sinks
        ]
    collecting = loop.model_copy(update={"wires": wires, "expanded": True})
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
    """Each item's outcome: its one sink's output (or the sinks' outputs by sink), or the
    settled failure of a sink."""
    count = len(loop.wires) // max(1, len(loop.body_sinks))
    outcomes: list[Any] = []
    for index in range(count):
        outputs = {sink: ports.get(f"{index}{KEY_SEPARATOR}{sink}") for sink in loop.body_sinks}
        failed = next((out for out in outputs.values() if settled_error(out)), None)
        if failed is not None:
            outcomes.append(failed)
        elif len(outputs) == 1:
            outcomes.append(next(iter(outputs.values())))
        else:
            results = {sink: (out or {}).get("result") for sink, out in outputs.items()}
            outcomes.append({"result": results, **outputs})
    return outcomes
