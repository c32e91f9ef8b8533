"""The Celery app: one per process, built from Settings (no implicit global app)."""

from __future__ import annotations

from celery import Celery
from celery.signals import before_task_publish

from conductor.model.settings import Settings
from workers.config import celery_config
from workers.profile import sent_stamp


def create_app(settings: Settings) -> Celery:
    """A Celery app configured for Conductor; tasks are added by `workers.tasks`."""
    app = Celery("conductor", set_as_current=False)
    app.config_from_object(celery_config(settings))
    # Every message says when it was published: a node's queue wait (workers/profile.py).
    # The signal is process-wide; connecting the same function again is a no-op.
    before_task_publish.connect(sent_stamp, weak=False)
    return app
