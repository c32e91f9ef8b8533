"""The continuation task, which sends the next segment of a large execution's canvas, and
the barrier task, a no-op that closes a group member ending in a group (signatures.closed).

A canvas's messages carry every later step, so a long Blueprint is sent a segment at a time
(workers.signatures.plan_canvas); the segment's last step is this task, which reads the stored
plan and what has finished, and sends the next segment the way a resume does.
"""

from __future__ import annotations

import logging

from celery import Celery

from workers.signatures import BARRIER_TASK, CONTINUE_TASK, plan_canvas
from workers.stores import Stores

log = logging.getLogger(__name__)


def register_continuation(app: Celery, stores: Stores) -> None:
    """Add the continuation and barrier tasks to `app`."""

    @app.task(name=BARRIER_TASK, ignore_result=True)
    def barrier() -> None:
        """Nothing: the chain it ends is done."""

    @app.task(name=CONTINUE_TASK, ignore_result=True)
    def continue_execution(execution_id: str, *, left: int) -> int:
        """Send the canvas of the nodes not finished yet; returns how many those are.

        `left` is how many were unfinished when this segment was sent: when none finished
        since (the execution was paused, cancelled or failed, and its nodes did not run),
        nothing is sent: a resume, a retry or the reconciler sends what is left.
        """
        stored = stores.state.stored_plan(execution_id)
        if stored is None:
            return 0
        nodes = stored.plan.nodes
        remaining = {key: node for key, node in nodes.items() if key not in stored.done}
        if len(remaining) >= left:
            log.info("execution %s: no node finished in its last segment", execution_id)
            return len(remaining)
        canvas = plan_canvas(app, execution_id, remaining)
        if canvas is not None:
            canvas.apply_async(ignore_result=True)
        return len(remaining)
