"""The continuation task, which sends the next segment of a large execution's canvas, and
the barrier task, a no-op that closes a group member ending in a group (signatures.closed).

A canvas's messages carry every later step, so a long Blueprint is sent a segment at a time
(workers.signatures.plan_canvas); the segment's last step is the continuation, which looks at
what has finished and sends the next segment the way a resume does. Each worker process keeps
the last few plans it parsed: a plan only changes when a loop adds its items (new keys), so a
continuation reads the execution's status, plan size and finished set (one pipeline, no node
record) and parses the plan only when its size changed.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass

from celery import Celery

from conductor.model.plan import ExecutionPlan
from storage.state import ExecutionStatus
from workers.signatures import BARRIER_TASK, CONTINUE_TASK, plan_canvas
from workers.stores import Stores

log = logging.getLogger(__name__)

CACHED_PLANS = 4


@dataclass(frozen=True)
class _Parsed:
    """A stored plan and each node's dependencies, as parsed once."""

    plan: ExecutionPlan
    dependencies: dict[str, list[str]]


class PlanCache:
    """The last few plans read, by execution id, while their number of nodes stays the same
    (a plan only grows: a loop's expansion adds its items)."""

    def __init__(self, stores: Stores, size: int = CACHED_PLANS) -> None:
        self.stores = stores
        self.size = size
        self.plans: OrderedDict[str, _Parsed] = OrderedDict()

    def get(self, execution_id: str, planned: int) -> _Parsed | None:
        """The plan of `planned` nodes, read again when the cached plan has another number."""
        cached = self.plans.get(execution_id)
        if cached is None or len(cached.plan.nodes) != planned:
            stored = self.stores.state.stored_plan(execution_id)
            if stored is None:
                return None
            cached = _Parsed(stored.plan, stored.plan.dependencies())
        self.plans[execution_id] = cached
        self.plans.move_to_end(execution_id)
        while len(self.plans) > self.size:
            self.plans.popitem(last=False)
        return cached


def register_continuation(app: Celery, stores: Stores) -> None:
    """Add the continuation and barrier tasks to `app`."""
    cache = PlanCache(stores)

    @app.task(name=BARRIER_TASK, ignore_result=True)
    def barrier() -> None:
        """Nothing: the chain it ends is done."""

    @app.task(name=CONTINUE_TASK, ignore_result=True)
    def continue_execution(execution_id: str, *, left: int) -> int:
        """Send the canvas of the nodes not finished yet; returns how many those are.

        Nothing is sent when the execution is not running (paused, cancelled, ended), nor when
        none of the `left` nodes unfinished when this segment was sent has finished since:
        resume, retry or the reconciler send what is left.
        """
        finished = stores.state.finished_nodes(execution_id)
        if finished is None or finished.status.is_terminal:
            return 0
        if finished.status is ExecutionStatus.PAUSED:
            return 0
        done = finished.done
        parsed = cache.get(execution_id, finished.planned)
        if parsed is None:
            return 0
        nodes = parsed.plan.nodes
        remaining = {key: node for key, node in nodes.items() if key not in done}
        if len(remaining) >= left:
            log.info("execution %s: no node finished in its last segment", execution_id)
            return len(remaining)
        dependencies = {key: parsed.dependencies[key] for key in remaining}
        canvas = plan_canvas(app, execution_id, remaining, dependencies=dependencies)
        if canvas is not None:
            canvas.apply_async(ignore_result=True)
        return len(remaining)
