"""Celery settings: JSON only, late acks, requeue on worker loss, prefetch 1, events on."""

from __future__ import annotations

from typing import Any

from conductor.model.admission import BROKER_PRIORITY_STEPS
from conductor.model.settings import Settings
from conductor.model.timeouts import DEFAULT_TIMEOUT_MS
from storage.redis_client import is_sentinel
from workers.result_backend import BACKEND_PATH, SENTINEL_BACKEND_PATH
from workers.routes import DEFAULT_QUEUE, NodeTypeRouter
from workers.signatures import time_limits

# Behind Sentinels a publish keeps trying for about 9 s (0, 0.2, 0.4 ... then 1 s apart): long
# enough for a primary to be replaced, as storage/redis_client.py's clients wait.
FAILOVER_PUBLISH_RETRY = {
    "max_retries": 12, "interval_start": 0, "interval_step": 0.2, "interval_max": 1,
}  # fmt: skip


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
    backend, publish_retry = BACKEND_PATH, {}
    if is_sentinel(url):  # Celery's form: the Sentinels' URLs, the primary's name beside them
        if not settings.redis_master:
            raise UnsafeSettings("CONDUCTOR_REDIS_MASTER is not set for sentinel:// Redis")
        transport["master_name"] = settings.redis_master
        backend = SENTINEL_BACKEND_PATH
        publish_retry = {"task_publish_retry_policy": FAILOVER_PUBLISH_RETRY}
    # One list per priority (kombu's Redis transport; docs/priorities.md). Not
    # queue_order_strategy="priority": that would order a worker's queues too, starving all
    # but its first; kombu already tries every queue's urgent list before any less urgent one.
    broker = {**transport, "priority_steps": list(BROKER_PRIORITY_STEPS)}
    default_limits = time_limits(DEFAULT_TIMEOUT_MS / 1000)
    return {
        "broker_url": url,
        "result_backend": f"{backend}+{url}",
        "broker_transport_options": broker,
        "result_backend_transport_options": transport,
        **publish_retry,
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
        # Celery counts KiB; None keeps children however large they grow.
        "worker_max_memory_per_child": settings.worker_max_memory_mb * 1024 or None,
    }
