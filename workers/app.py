"""The Celery app: one per process, built from Settings (no implicit global app)."""

from __future__ import annotations

from celery import Celery

from conductor.model.settings import Settings
from workers.config import celery_config


def create_app(settings: Settings) -> Celery:
    """A Celery app configured for Conductor; tasks are added by `workers.tasks`."""
    app = Celery("conductor", set_as_current=False)
    app.config_from_object(celery_config(settings))
    return app
