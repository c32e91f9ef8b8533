"""Celery signatures for nodes, and canvases of dependency levels.

Shared by the dispatcher (a whole plan) and the node task (a loop's items, at run time).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from celery import Celery, chain, group
from celery.canvas import Signature

from conductor.model.graph import levels
from conductor.model.plan import PlannedNode
from conductor.model.settings import HARD_LIMIT_MARGIN_S
from conductor.model.timeouts import DEFAULT_TIMEOUT_MS

NODE_TASK = "conductor.node"
COLLECT_PHASE = "collect"

# Soft limit a little after the node's own (cooperative) timeout, hard limit after that. The
# worker's defaults (workers.config) fit the default timeout: only other timeouts travel with
# the message, which keeps messages small (a chain's carries every later step's options).
SOFT_LIMIT_MARGIN_S = 1


def node_signature(
    app: Celery, execution_id: str, node: PlannedNode, phase: str | None = None
) -> Signature[Any]:
    """The immutable task signature of one node, with its time limits and queue."""
    options: dict[str, Any] = {}
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


def levels_canvas(
    app: Celery, execution_id: str, nodes: Mapping[str, PlannedNode]
) -> Signature[Any] | None:
    """A chain of dependency levels over `nodes` (dependencies outside it count as done)."""
    dependencies = {key: node.depends_on for key, node in nodes.items()}
    steps = [
        _one_or_group(app, [_signature(app, execution_id, nodes[key]) for key in level])
        for level in levels(dependencies)
    ]
    if not steps:
        return None
    return steps[0] if len(steps) == 1 else chain(*steps, app=app)


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
    return chain(group(chains, app=app), then, app=app)


def _one_or_group(app: Celery, signatures: list[Signature[Any]]) -> Signature[Any]:
    return signatures[0] if len(signatures) == 1 else group(signatures, app=app)


def _one_or_chain(app: Celery, signatures: list[Signature[Any]]) -> Signature[Any]:
    return signatures[0] if len(signatures) == 1 else chain(*signatures, app=app)
