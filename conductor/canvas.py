"""Blueprint plan -> Celery canvas: a chain of dependency levels, each level a group.

Every node is an immutable `conductor.node` signature: nodes read their inputs from Redis, not
from Celery's argument passing, and no task ever waits on another. Nodes already finished
(`done`) are left out, so a paused, resumed or retried execution re-dispatches only the rest.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from celery import Celery, chain, group
from celery.canvas import Signature

from conductor.graph import levels
from conductor.plan import ExecutionPlan, PlannedNode
from conductor.settings import HARD_LIMIT_MARGIN_S
from workers.tasks import NODE_CRASHED_TASK, NODE_TASK

# Soft limit a little after the node's own (cooperative) timeout, hard limit after that.
SOFT_LIMIT_MARGIN_S = 1


def build_canvas(
    app: Celery, plan: ExecutionPlan, done: Collection[str] = ()
) -> Signature[Any] | None:
    """The canvas for every node of `plan` not in `done`; None when nothing is left."""
    remaining = {key: deps for key, deps in plan.dependencies().items() if key not in done}
    steps = [_level(app, plan, level) for level in levels(remaining)]
    if not steps:
        return None
    if len(steps) == 1:
        return steps[0]
    return chain(*steps, app=app)


def _level(app: Celery, plan: ExecutionPlan, keys: list[str]) -> Signature[Any]:
    signatures = [node_signature(app, plan.execution_id, plan.nodes[key]) for key in keys]
    return signatures[0] if len(signatures) == 1 else group(signatures, app=app)


def node_signature(app: Celery, execution_id: str, node: PlannedNode) -> Signature[Any]:
    """The immutable task signature of one node, with its time limits and queue."""
    timeout_s = node.timeout_ms() / 1000
    options: dict[str, Any] = {
        "soft_time_limit": timeout_s + SOFT_LIMIT_MARGIN_S,
        "time_limit": timeout_s + HARD_LIMIT_MARGIN_S,
        "link_error": [
            app.signature(NODE_CRASHED_TASK, args=(execution_id, node.key), immutable=True)
        ],
    }
    if node.queue:
        options["queue"] = node.queue
    return app.signature(
        NODE_TASK,
        args=(execution_id, node.key),
        kwargs={"node_type": node.type},
        immutable=True,
        **options,
    )
