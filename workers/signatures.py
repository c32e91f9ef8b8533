"""Celery signatures for nodes, and the canvas of a set of nodes: nested chains and groups in
which a node waits only for what it depends on (conductor.model.graph.decompose), sent in
segments of bounded size when the set is large (docs/canvas.md).

Shared by the dispatcher (a whole plan), the continuation task (the next segment) and the
node task (a loop's items, at run time).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from celery import Celery, chain, group
from celery.canvas import Signature

from conductor.model.admission import broker_priority
from conductor.model.graph import Parallel, Series, Shape, decompose, first_levels
from conductor.model.plan import PlannedNode
from conductor.model.settings import HARD_LIMIT_MARGIN_S
from conductor.model.timeouts import DEFAULT_TIMEOUT_MS

NODE_TASK = "conductor.node"
CONTINUE_TASK = "conductor.continue"
BARRIER_TASK = "conductor.barrier"
COLLECT_PHASE = "collect"
# Nodes after the first dependency level of one dispatch: a chain's message carries every
# later step (about 300 bytes each), so this bounds the largest message (under 64 KB).
SEGMENT_NODES = 120

# Soft limit a little after the node's own (cooperative) timeout, hard limit after that. The
# worker's defaults (workers.config) fit the default timeout: only other timeouts travel with
# the message, which keeps messages small (a chain's carries every later step's options).
SOFT_LIMIT_MARGIN_S = 1


def node_signature(
    app: Celery, execution_id: str, node: PlannedNode, phase: str | None = None
) -> Signature[Any]:
    """The immutable task signature of one node, with its time limits and queue."""
    # Always set: a message without one is kombu's most urgent (its 0).
    options: dict[str, Any] = {"priority": broker_priority(node.priority)}
    if node.timeout_ms() != DEFAULT_TIMEOUT_MS:
        options.update(time_limits(node.timeout_ms() / 1000))
    if node.queue:
        options["queue"] = node.queue
    kwargs: dict[str, Any] = {"node_type": node.type}
    if phase:
        kwargs["phase"] = phase
    elif node.rate_limit is not None:  # checked before the node loads: waiting costs nothing
        kwargs["rate_limit"] = node.rate_limit.model_dump()
    return app.signature(
        NODE_TASK, args=(execution_id, node.key), kwargs=kwargs, immutable=True, **options
    )


def time_limits(timeout_s: float) -> dict[str, float]:
    """Celery's soft and hard time limits for a node with this timeout."""
    return {
        "soft_time_limit": timeout_s + SOFT_LIMIT_MARGIN_S,
        "time_limit": timeout_s + HARD_LIMIT_MARGIN_S,
    }


def plan_canvas(
    app: Celery,
    execution_id: str,
    nodes: Mapping[str, PlannedNode],
    segment_nodes: int = SEGMENT_NODES,
    dependencies: Mapping[str, Sequence[str]] | None = None,
) -> Signature[Any] | None:
    """The canvas of `nodes` (dependencies outside it count as done): all of them, or when
    there are more than the first level plus `segment_nodes`, the first levels up to that,
    followed by the continuation task that sends the next segment from the stored plan.
    `dependencies`, when given, are the nodes' `depends_on` (computed once by the caller)."""
    if dependencies is None:
        dependencies = {key: node.depends_on for key, node in nodes.items()}
    first = first_levels(dependencies, segment_nodes)
    canvas = nodes_canvas(app, execution_id, {key: nodes[key] for key in first})
    if canvas is None or len(first) == len(nodes):
        return canvas
    follow = app.signature(
        CONTINUE_TASK, args=(execution_id,), kwargs={"left": len(nodes)}, immutable=True
    )
    steps = list(canvas.tasks) if isinstance(canvas, chain) else [canvas]
    return chain(*steps, follow, app=app)


def nodes_canvas(
    app: Celery, execution_id: str, nodes: Mapping[str, PlannedNode]
) -> Signature[Any] | None:
    """Nested chains and groups over `nodes` (dependencies outside it count as done)."""
    shape = decompose({key: node.depends_on for key, node in nodes.items()})
    return None if shape is None else _shape_canvas(app, execution_id, shape, nodes)


def _shape_canvas(
    app: Celery, execution_id: str, shape: Shape, nodes: Mapping[str, PlannedNode]
) -> Signature[Any]:
    if isinstance(shape, str):
        return _signature(app, execution_id, nodes[shape])
    parts = [_shape_canvas(app, execution_id, part, nodes) for part in shape.parts]
    if isinstance(shape, Series):
        return chain(*parts, app=app)
    assert isinstance(shape, Parallel)
    return group([closed(app, part) for part in parts], app=app)


def closed(app: Celery, member: Signature[Any]) -> Signature[Any]:
    """A group member that ends in a group gets a no-op barrier task after it.

    A chord whose header holds a group's result joins the header's stored results when it
    ends, and node tasks store none (ignore_result): it would wait out its time limit. A
    member ending in one task is joined by Celery's counters alone."""
    if not _ends_in_group(member):
        return member
    steps = list(member.tasks) if isinstance(member, chain) else [member]
    return chain(*steps, app.signature(BARRIER_TASK, immutable=True), app=app)


def _ends_in_group(canvas: Signature[Any]) -> bool:
    if isinstance(canvas, group):
        return True
    return isinstance(canvas, chain) and bool(canvas.tasks) and _ends_in_group(canvas.tasks[-1])


def _signature(app: Celery, execution_id: str, node: PlannedNode) -> Signature[Any]:
    """A loop whose items were already dispatched (a resume) is sent for its collecting run."""
    return node_signature(app, execution_id, node, COLLECT_PHASE if node.expanded else None)


def lanes_canvas(
    app: Celery, parts: Sequence[Signature[Any]], lanes: int, then: Signature[Any]
) -> Signature[Any]:
    """Run `parts` on at most `lanes` parallel lanes (each a chain), then `then`."""
    count = max(1, min(lanes, len(parts)))
    chains = [_one_or_chain(app, list(parts[lane::count])) for lane in range(count)]
    if len(chains) == 1:
        return chain(chains[0], then, app=app)
    return chain(group([closed(app, lane) for lane in chains], app=app), then, app=app)


def _one_or_chain(app: Celery, signatures: list[Signature[Any]]) -> Signature[Any]:
    return signatures[0] if len(signatures) == 1 else chain(*signatures, app=app)
