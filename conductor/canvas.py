"""Blueprint plan -> Celery canvas: a chain of dependency levels, each level a group.

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
from workers.signatures import levels_canvas


def build_canvas(
    app: Celery, plan: ExecutionPlan, done: Collection[str] = ()
) -> Signature[Any] | None:
    """The canvas for every node of `plan` not in `done`; None when nothing is left."""
    remaining = {key: node for key, node in plan.nodes.items() if key not in done}
    return levels_canvas(app, plan.execution_id, remaining)
