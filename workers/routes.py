"""The Celery router that sends node tasks to queues by node type (CONDUCTOR_QUEUE_ROUTES)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from conductor.model.plan import PlannedNode
from workers.signatures import NODE_TASK

DEFAULT_QUEUE = "conductor"  # node tasks with no queue of their own or by type


def queue_of(node: PlannedNode, routes: Mapping[str, str]) -> str:
    """The queue a node's task goes to: its own `queue:`, else its type's route, else the
    default queue (what NodeTypeRouter and the sender decide together)."""
    return node.queue or routes.get(node.type) or DEFAULT_QUEUE


class NodeTypeRouter:
    """Routes a node task to its type's queue; a queue given when sending (a node's own
    `queue:`) wins, and an unrouted type falls through to the default queue."""

    def __init__(self, routes: Mapping[str, str]) -> None:
        self.routes = dict(routes)

    def __call__(
        self,
        name: str,
        args: Any,
        kwargs: Mapping[str, Any] | None,
        options: Mapping[str, Any],
        task: Any = None,
        **extra: Any,
    ) -> dict[str, str] | None:
        """Celery's router signature; None lets the next router (or the default) decide."""
        if name != NODE_TASK or not kwargs:
            return None
        queue = self.routes.get(str(kwargs.get("node_type")))
        return {"queue": queue} if queue else None
