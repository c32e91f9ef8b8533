"""The queues Conductor's workers consume, from settings."""

from __future__ import annotations

from conductor.model.settings import Settings
from conductor.submit_task import CELERY_DEFAULT_QUEUE
from workers.routes import DEFAULT_QUEUE


def standard_queues(settings: Settings) -> list[str]:
    """Conductor's default queue, Celery's (`conductor.submit` from plain Celery clients) and
    every queue CONDUCTOR_QUEUE_ROUTES sends to: what `conductor worker` consumes by default."""
    return list(dict.fromkeys([DEFAULT_QUEUE, CELERY_DEFAULT_QUEUE, *settings.routed_queues()]))
