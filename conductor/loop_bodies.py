"""Per-item fan-out: the nodes a bodyless `loop` feeds from its `item` (or `index`) handle
become its body, as if written inside its `nodes` (n8n's "Loop Over Items").

The rule, applied at every nesting level before planning (after validation):
- the body starts at the targets of the loop's edges with `sourceHandle: item` or `index`,
  and takes in every node reachable from them through further edges;
- a node fed by anything else (the loop's `complete` or un-handled output, a node outside the
  body) is not in the body, nor is what only it leads to (pruned until nothing changes);
- an edge from the loop's `item` handle makes the item the target's input; from `index`,
  the item's index; inside the body, edges stay as written;
- an edge from a body node to a node outside becomes an edge from the loop: that node gets
  the loop's output (every item's result, in order), after every item ran.
"""

from __future__ import annotations

from collections.abc import Sequence

from conductor.model.blueprint import BlueprintNode, Edge
from conductor.model.plan import ITEM_SOURCE, LOOP_TYPE

BODY_HANDLES = frozenset({"item", "index"})


def with_loop_bodies(
    children: Sequence[BlueprintNode], edges: Sequence[Edge]
) -> tuple[list[BlueprintNode], list[Edge]]:
    """The nodes and edges of one level with each fan-out loop's body moved into it, and the
    same done inside every node's own children."""
    nodes, wired = list(children), list(edges)
    for loop_id in [node.id for node in nodes if _fans_out(node, wired)]:
        nodes, wired = _fold(loop_id, nodes, wired)
    return [_nested(node) for node in nodes], wired


def _nested(node: BlueprintNode) -> BlueprintNode:
    """The node with its own children rewritten (a body just formed included)."""
    if not node.nodes:
        return node
    inner, inner_edges = with_loop_bodies(node.nodes, node.edges)
    return node.model_copy(update={"nodes": inner, "edges": inner_edges})


def _fans_out(node: BlueprintNode, edges: Sequence[Edge]) -> bool:
    """A loop without children whose `item` or `index` handle feeds some node."""
    if node.type != LOOP_TYPE or node.nodes:
        return False
    return any(_from_handle(edge, node.id) for edge in edges)


def _from_handle(edge: Edge, loop_id: str) -> bool:
    return edge.source == loop_id and edge.sourceHandle in BODY_HANDLES


def body_of(loop_id: str, edges: Sequence[Edge]) -> set[str]:
    """The ids of the loop's body: reachable from its item/index handle, fed only by it or
    by the body."""
    body = {edge.target for edge in edges if _from_handle(edge, loop_id)}
    frontier = set(body)
    while frontier:
        found = {e.target for e in edges if e.source in frontier and e.target != loop_id}
        frontier = found - body
        body |= frontier
    while True:
        fed_outside = {
            edge.target
            for edge in edges
            if edge.target in body and edge.source not in body and not _from_handle(edge, loop_id)
        }
        if not fed_outside:
            return body
        body -= fed_outside


def _fold(
    loop_id: str, nodes: list[BlueprintNode], edges: list[Edge]
) -> tuple[list[BlueprintNode], list[Edge]]:
    """Move the loop's body into its `nodes`; re-wire the edges around it."""
    body = body_of(loop_id, edges)
    if not body:
        return nodes, edges
    inner = [_entry(e) if _from_handle(e, loop_id) else e for e in edges if e.target in body]
    kept = _around(loop_id, body, edges)
    folded: list[BlueprintNode] = []
    for node in nodes:
        if node.id == loop_id:
            body_nodes = [child for child in nodes if child.id in body]
            folded.append(node.model_copy(update={"nodes": body_nodes, "edges": inner}))
        elif node.id not in body:
            folded.append(node)
    return folded, kept


def _around(loop_id: str, body: set[str], edges: list[Edge]) -> list[Edge]:
    """The edges outside the body, in place; where a body node fed a node outside, the loop
    does instead, once per node and port (a port already fed by the loop keeps its edge)."""
    fed = {(e.target, e.targetHandle) for e in edges if e.source == loop_id}
    kept: list[Edge] = []
    for edge in edges:
        if edge.target in body:
            continue
        if edge.source not in body:
            kept.append(edge)
        elif (edge.target, edge.targetHandle) not in fed:
            fed.add((edge.target, edge.targetHandle))
            kept.append(edge.model_copy(update={"source": loop_id, "sourceHandle": None}))
    return kept


def _entry(edge: Edge) -> Edge:
    """An edge from the loop's handle: from the item's output instead, whose `item` key holds
    the item and `index` key its index."""
    return edge.model_copy(update={"source": ITEM_SOURCE})
