"""Blueprint plan -> Celery canvas: nested chains and groups in which a node waits only for
the nodes it depends on, sent in segments of bounded size (docs/canvas.md).

Every node is an immutable `conductor.node` signature: nodes read their inputs from Redis, not
from Celery's argument passing, and no task ever waits on another. Nodes already finished
(`done`) are left out, so a paused, resumed or retried execution re-dispatches only the rest.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from celery import Celery
from celery.canvas import Signature

from conductor.model.plan import ExecutionPlan
from workers.signatures import plan_canvas


def build_canvas(
    app: Celery, plan: ExecutionPlan, done: Collection[str] = ()
) -> Signature[Any] | None:
    """The canvas for the nodes of `plan` not in `done` (its first segment, ending in the
    task that sends the next, when there are many); None when nothing is left."""
    remaining = {key: node for key, node in plan.nodes.items() if key not in done}
    return plan_canvas(app, plan.execution_id, remaining)
