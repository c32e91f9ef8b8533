"""`conductor.submit`: the Celery task services already on Celery submit with."""

from __future__ import annotations

from typing import Any

from celery import Celery, Task

from conductor.model.admission import DEFAULT_PRIORITY, Admission
from conductor.model.loader import blueprint_from_data
from conductor.submission import Submitter

SUBMIT_TASK = "conductor.submit"
# Plain Celery clients send to the default queue; Conductor's workers consume it for this task.
CELERY_DEFAULT_QUEUE = "celery"


def register_submit_task(app: Celery, submitter: Submitter) -> None:
    """Add `conductor.submit` to a worker's app. Its result is the execution id."""

    @app.task(name=SUBMIT_TASK, bind=True, acks_late=True)
    def submit(  # noqa: PLR0917  (Celery clients may pass them positionally)
        self: Task[Any, Any],
        blueprint: dict[str, Any] | None = None,
        blueprint_id: str | None = None,
        inputs: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        priority: int = DEFAULT_PRIORITY,
        concurrency_key: str | None = None,
    ) -> str:
        """Validate, store and dispatch; a redelivered message gives the same execution."""
        model = blueprint_from_data(blueprint) if blueprint is not None else None
        submitted = submitter.submit(
            model,
            blueprint_id=blueprint_id,
            inputs=inputs,
            idempotency_key=idempotency_key or f"celery-task:{self.request.id}",
            admission=Admission(priority=priority, concurrency_key=concurrency_key),
        )
        return submitted.execution_id
