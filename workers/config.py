"""Celery settings: JSON only, late acks, requeue on worker loss, prefetch 1, events on."""

from __future__ import annotations

from typing import Any

from conductor.model.admission import BROKER_PRIORITY_STEPS
from conductor.model.settings import Settings
from conductor.model.timeouts import DEFAULT_TIMEOUT_MS
from workers.result_backend import BACKEND_PATH
from workers.routes import DEFAULT_QUEUE, NodeTypeRouter
from workers.signatures import time_limits


class UnsafeSettings(ValueError):
    """A combination of settings that would lose or duplicate work."""


def broker_url(redis_url: str) -> str:
    """kombu's spelling of a Redis URL (`unix://` becomes `redis+socket://`)."""
    if redis_url.startswith("unix://"):
        return "redis+socket://" + redis_url.removeprefix("unix://")
    return redis_url


def celery_config(settings: Settings) -> dict[str, Any]:
    """The Celery configuration for Conductor's app."""
    if settings.redis_url is None:
        raise UnsafeSettings("CONDUCTOR_REDIS_URL is not set")
    if settings.visibility_timeout_s <= settings.max_time_limit_s():
        raise UnsafeSettings(
            f"CONDUCTOR_VISIBILITY_TIMEOUT_S={settings.visibility_timeout_s} must be above the "
            f"longest node time limit ({settings.max_time_limit_s()} s), or Redis would hand "
            "running nodes to a second worker"
        )
    url = broker_url(settings.redis_url)
    transport: dict[str, Any] = {"visibility_timeout": settings.visibility_timeout_s}
    # One list per priority (kombu's Redis transport; docs/priorities.md). Not
    # queue_order_strategy="priority": that would order a worker's queues too, starving all
    # but its first; kombu already tries every queue's urgent list before any less urgent one.
    broker = {**transport, "priority_steps": list(BROKER_PRIORITY_STEPS)}
    default_limits = time_limits(DEFAULT_TIMEOUT_MS / 1000)
    return {
        "broker_url": url,
        "result_backend": f"{BACKEND_PATH}+{url}",
        "broker_transport_options": broker,
        "result_backend_transport_options": transport,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "worker_send_task_events": True,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        # Task results (only `conductor.submit` keeps one) are a finished thing; a chord's join
        # state must outlive a running execution, however long its header waits in the queue.
        "result_expires": settings.finished_ttl_s,
        "result_chord_expires": settings.state_ttl_s,
        "task_default_queue": DEFAULT_QUEUE,
        # Time limits of a node with the default timeout; others carry their own.
        "task_soft_time_limit": default_limits["soft_time_limit"],
        "task_time_limit": default_limits["time_limit"],
        # A node's own queue (set on its signature) wins over these; see NodeTypeRouter.
        "task_routes": (NodeTypeRouter(settings.queue_routes),) if settings.queue_routes else (),
        "broker_connection_retry_on_startup": True,
        "worker_hijack_root_logger": False,
    }
