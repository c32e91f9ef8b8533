"""The Celery tasks: thin adapters around `run_node`."""

from __future__ import annotations

import logging
from typing import Any

import redis
from celery import Celery, Task

from conductor.settings import Settings
from nodes.base import NodeEnvironment
from nodes.registry import NodeRegistry
from storage.blobs import FilesystemBlobStore
from storage.redis_state import RedisStateStore
from storage.state import ExecutionStatus, NodeStatus
from workers.finalize import finalize
from workers.run_node import Outcome, run_node
from workers.stores import Stores

NODE_TASK = "conductor.node"
NODE_CRASHED_TASK = "conductor.node_crashed"

log = logging.getLogger(__name__)


def make_stores(settings: Settings) -> Stores:
    """Stores for a worker or a client, from settings."""
    assert settings.redis_url is not None, "settings.redis_url must be set"
    client = redis.Redis.from_url(settings.redis_url)
    return Stores(
        state=RedisStateStore(client, ttl_s=settings.state_ttl_s),
        blobs=FilesystemBlobStore(settings.blob_dir),
        blob_threshold_bytes=settings.blob_threshold_bytes,
    )


def node_environment(settings: Settings) -> NodeEnvironment:
    """What nodes on this worker may touch."""
    return NodeEnvironment(files_root=settings.files_root, allow_shell=settings.allow_shell)


def register_tasks(
    app: Celery,
    stores: Stores,
    registry: NodeRegistry,
    environment: NodeEnvironment | None = None,
) -> None:
    """Add Conductor's tasks to `app`."""

    @app.task(name=NODE_TASK, bind=True, ignore_result=True, max_retries=None)
    def node(self: Task[Any, Any], execution_id: str, node_key: str, node_type: str = "") -> str:
        """Run one node; a retryable failure comes back as a Celery retry with backoff."""
        worker = self.request.hostname or "worker"
        run = run_node(
            execution_id, node_key, stores, registry, worker=worker, environment=environment
        )
        if run.outcome is Outcome.RETRY:
            log.info("retrying %s/%s in %.1f s", execution_id, node_key, run.retry_in_s)
            raise self.retry(countdown=run.retry_in_s)
        return run.outcome.value

    @app.task(name=NODE_CRASHED_TASK, ignore_result=True)
    def node_crashed(execution_id: str, node_key: str) -> None:
        """Errback of a node task that crashed (hard time limit, worker bug): fail the node."""
        error = {
            "code": "TIMEOUT",
            "message": "the node task was killed (hard time limit or crash)",
            "nodeId": node_key,
        }
        snapshot = stores.state.snapshot(execution_id, [])
        record = snapshot.nodes.get(node_key)
        if record is None or record.status in (NodeStatus.SUCCEEDED, NodeStatus.SKIPPED):
            return
        stores.state.fail(execution_id, node_key, error)
        finalize(execution_id, stores, ExecutionStatus.FAILED, error)
