"""The Celery tasks: thin adapters around `run_node`."""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

from celery import Celery, Task
from celery.canvas import Signature
from celery.exceptions import Ignore, TimeLimitExceeded
from celery.signals import worker_process_init

from conductor.model.settings import Settings
from nodes.base import NodeEnvironment, settled_failure
from nodes.registry import NodeRegistry
from storage.blobs import BlobStore, open_blob_store
from storage.rate_limits import RateLimiter
from storage.redis_client import Redis
from storage.redis_client import redis_client as storage_redis_client
from storage.redis_state import RedisStateStore
from storage.state import FINISHED_NODE, Completion, ExecutionStatus, NodeStatus
from workers.attempt_watch import AttemptWatch
from workers.continuation import register_continuation
from workers.expansion import ItemsToRun
from workers.finalize import finalize
from workers.profile import SENT_HEADER, queue_wait_ms
from workers.run_node import NodeRun, Outcome, run_node
from workers.signatures import (
    COLLECT_PHASE,
    NODE_TASK,
    lanes_canvas,
    node_signature,
    nodes_canvas,
)
from workers.stores import Stores

log = logging.getLogger(__name__)


MAX_COUNTDOWN_S = 30.0  # a longer rate-limit wait is taken in steps: the bucket is asked again


def redis_client(url: str, master: str | None = None) -> Redis:
    """A Redis client under the one client policy (storage/redis_client.py)."""
    return storage_redis_client(url, master=master)


def make_stores(settings: Settings) -> Stores:
    """Stores for a worker or a client, from settings."""
    assert settings.redis_url is not None, "settings.redis_url must be set"
    client = redis_client(settings.redis_url, master=settings.redis_master)
    return Stores(
        state=RedisStateStore(
            client, ttl_s=settings.state_ttl_s, lease_ms=int(settings.lease_s * 1000)
        ),
        blobs=open_blob_store(settings.blob_store_url()),
        blob_threshold_bytes=settings.blob_threshold_bytes,
        finished_ttl_s=settings.finished_ttl_s,
    )


def node_environment(settings: Settings, blobs: BlobStore | None = None) -> NodeEnvironment:
    """What nodes on this worker may touch (with `blobs`, nodes stream large content there)."""
    return NodeEnvironment(
        files_root=settings.files_root,
        allow_shell=settings.allow_shell,
        http_allow=settings.http_allow,
        max_output_bytes=settings.max_output_mb * 1024 * 1024,
        park_delay_ms=settings.park_delay_ms,
        blobs=blobs,
        blob_threshold_bytes=settings.blob_threshold_bytes,
    )


def register_tasks(
    app: Celery,
    stores: Stores,
    registry: NodeRegistry,
    environment: NodeEnvironment,
    limiter: RateLimiter,
) -> None:
    """Add Conductor's tasks to `app`."""
    watch = AttemptWatch(stores.state, hard_stop=_exit_pool_child)
    register_continuation(app, stores)
    worker_process_init.connect(_mark_pool_child, weak=False)

    def on_failure(  # noqa: PLR0917  (Celery calls it with these, positionally)
        task: Task[Any, Any], exc: Exception, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        """Celery calls this in the worker's main process when it killed a node task at its
        hard time limit (the task itself records every other failure): fail the node."""
        if isinstance(exc, TimeLimitExceeded) and len(args) == 2:
            message = "the node task was killed at its hard time limit"
            record_crash(stores, args[0], args[1], {"code": "TIMEOUT", "message": message})

    @app.task(
        name=NODE_TASK, bind=True, ignore_result=True, max_retries=None, on_failure=on_failure
    )
    def node(
        self: Task[Any, Any],
        execution_id: str,
        node_key: str,
        *,
        node_type: str = "",
        phase: str | None = None,
        rate_limit: dict[str, Any] | None = None,
    ) -> str:
        """Run one node; a retryable failure comes back as a Celery retry with backoff, and a
        loop replaces itself with its items' canvas followed by its collecting run."""
        if rate_limit is not None:
            wait_s = limiter.wait_s(
                rate_limit["key"], rate_limit["per_second"], rate_limit["burst"]
            )
            if wait_s > 0:  # not an attempt: the node has not started
                # short countdowns only: a broker ETA past the visibility timeout is redelivered
                raise self.retry(countdown=min(wait_s, MAX_COUNTDOWN_S))
        worker = self.request.hostname or "worker"
        sent_ms = getattr(self.request, SENT_HEADER, None)
        waited_ms = queue_wait_ms(sent_ms, self.request.eta, int(time.time() * 1000))
        try:
            run = run_node(
                execution_id,
                node_key,
                stores,
                registry,
                worker=worker,
                environment=environment,
                phase=phase,
                watch=watch,
                queue_wait_ms=waited_ms,
            )
        except Exception as exc:  # a bug or a lost store: record it, keep the canvas going
            log.exception("node %s/%s crashed", execution_id, node_key)
            error = {"code": "INTERNAL_ERROR", "message": f"{type(exc).__name__}: {exc}"}
            record_crash(stores, execution_id, node_key, error)
            return Outcome.FAILED.value
        _follow_up(self, app, (execution_id, node_key), run)
        return run.outcome.value


def _follow_up(task: Task[Any, Any], app: Celery, node: tuple[str, str], run: NodeRun) -> None:
    """What a run asks of its task: a retry with backoff, a look again (BUSY), stopping its
    canvas (PARKED: what follows is sent again when it wakes), or its loop's items."""
    execution_id, node_key = node
    if run.outcome is Outcome.RETRY:
        log.info("retrying %s/%s in %.1f s", execution_id, node_key, run.retry_in_s)
        raise task.retry(countdown=run.retry_in_s)
    if run.outcome is Outcome.BUSY:  # not an attempt: another one holds the node
        # (its rate-limit token was taken already: looking again must not take another)
        kwargs = {**(task.request.kwargs or {}), "rate_limit": None}
        raise task.retry(countdown=run.retry_in_s, kwargs=kwargs)
    if run.outcome is Outcome.PARKED:
        raise Ignore()
    if run.outcome is Outcome.EXPANDED and run.items is not None:
        raise task.replace(items_canvas(app, execution_id, run.items))


_POOL_CHILD = {"pid": 0}  # set in each prefork pool child when it starts


def _mark_pool_child(**_: Any) -> None:
    _POOL_CHILD["pid"] = os.getpid()


def _exit_pool_child(reason: str) -> None:
    """Stop a node that ignored its stop signal (a JavaScript loop, a C call): end this pool
    child. Its message is requeued (reject_on_worker_lost) and then ignored, since the node is
    cancelled or held by another attempt; the pool starts a new child. Never the main process."""
    if _POOL_CHILD["pid"] != os.getpid():
        log.warning("cannot stop %s: not in a pool child", reason)
        return
    log.warning("exiting pool child %d: %s", os.getpid(), reason)
    logging.shutdown()
    os._exit(70)


def record_crash(stores: Stores, execution_id: str, node_key: str, error: dict[str, Any]) -> None:
    """Fail a node whose task could not finish normally, as run_node would have: a settled
    failure in a settling scope, otherwise the execution's end."""
    record = stores.state.snapshot(execution_id, []).nodes.get(node_key)
    if record is None or record.status in FINISHED_NODE:
        return
    error = {**error, "nodeId": node_key}
    stored = stores.state.stored_plan(execution_id)
    spec = stored.plan.nodes.get(node_key) if stored else None
    if spec is None or not spec.settle:
        stores.state.fail(execution_id, node_key, error)
        finalize(execution_id, stores, ExecutionStatus.FAILED, error)
        return
    output = json.dumps(settled_failure(error))
    if (
        stores.state.complete(execution_id, node_key, output, NodeStatus.FAILED, error)
        is Completion.LAST
    ):
        finalize(execution_id, stores, ExecutionStatus.SUCCEEDED)


def items_canvas(app: Celery, execution_id: str, items: ItemsToRun) -> Signature[Any]:
    """A loop's items on their lanes, then the loop's collecting run."""
    parts = [nodes_canvas(app, execution_id, nodes) for nodes in items.items]
    collect = node_signature(app, execution_id, items.loop, phase=COLLECT_PHASE)
    return lanes_canvas(app, [part for part in parts if part is not None], items.lanes, collect)
