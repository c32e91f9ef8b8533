"""Queues per node type: each node runs on a worker of its queue, as the history records it."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis

from conductor.dispatch import Dispatcher
from conductor.embedded import RedisServer, ServiceProcess, WorkerProcess
from conductor.model.loader import load_blueprint_text
from conductor.model.settings import Settings
from conductor.waiting import wait_for_result
from nodes.registry import default_registry
from storage.events import EventType
from storage.history import HistoryStore, open_history
from workers.app import create_app
from workers.tasks import make_stores

pytestmark = pytest.mark.e2e

ROUTES = "delay=io,transform=cpu"
HOST = socket.gethostname()
IO_WORKER, CPU_WORKER = f"io@{HOST}", f"cpu@{HOST}"
DEFAULT_WORKER = f"e2e@{HOST}"  # the session's worker (tests/conftest.py), on the default queue

# by type: by-type-io (delay) and by-type-cpu (transform); a node's own queue wins over its
# type's (own-cpu is a delay) and routes an unrouted type (own-io); unrouted goes to the default.
ROUTED = """
id: queues
name: Queues
nodes:
  - {id: by-type-io, type: delay, parameters: {ms: 1}}
  - {id: by-type-cpu, type: transform, parameters: {transformFunction: "x => 1"}}
  - {id: own-cpu, type: delay, queue: cpu, parameters: {ms: 1}}
  - {id: own-io, type: edit-fields, queue: io, parameters: {values: {a: 1}}}
  - {id: unrouted, type: edit-fields, parameters: {values: {b: 2}}}
edges:
  - {source: by-type-io, target: by-type-cpu}
  - {source: by-type-cpu, target: unrouted}
  - {source: own-cpu, target: own-io}
  - {source: own-io, target: unrouted}
"""
EXPECTED_WORKER = {
    "by-type-io": IO_WORKER,
    "by-type-cpu": CPU_WORKER,
    "own-cpu": CPU_WORKER,
    "own-io": IO_WORKER,
    "unrouted": DEFAULT_WORKER,
}


@pytest.fixture(scope="module")
def queue_workers(
    redis_server: RedisServer, worker_env: dict[str, str], worker: WorkerProcess
) -> Iterator[None]:
    """One worker on `io` and one on `cpu`, beside the session's worker on the default queue."""
    env = {**worker_env, "CONDUCTOR_QUEUE_ROUTES": ROUTES}
    started = [
        WorkerProcess(redis_server.url, concurrency=1, queues=[queue], env=env, name=name).start()
        for queue, name in (("io", "io@%h"), ("cpu", "cpu@%h"))
    ]
    yield
    with ThreadPoolExecutor(len(started)) as pool:  # warm shutdowns, side by side
        list(pool.map(WorkerProcess.stop, started))


@pytest.fixture(scope="module")
def history_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('queues') / 'history.sqlite3'}"


@pytest.fixture(scope="module")
def recorder(redis_server: RedisServer, history_url: str) -> Iterator[ServiceProcess]:
    """`conductor recorder` into this module's own history store."""
    env = {"CONDUCTOR_REDIS_URL": redis_server.url, "CONDUCTOR_HISTORY_URL": history_url}
    process = ServiceProcess(["recorder", "--name", "e2e-queues-recorder"], env).start()
    yield process
    process.stop()


@pytest.fixture
def history(history_url: str, recorder: ServiceProcess) -> Iterator[HistoryStore]:
    store = open_history(history_url)
    yield store
    store.close()


def recorded_workers(
    history: HistoryStore, execution_id: str, timeout_s: float = 15
) -> dict[str, str | None]:
    """Node id -> worker, once the recorder has stored the execution's end and every node."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        record = history.execution(execution_id)
        runs = history.node_runs(execution_id)
        if record is not None and record.status.is_terminal and len(runs) == len(EXPECTED_WORKER):
            return {run.node_id: run.worker for run in runs}
        time.sleep(0.1)
    raise AssertionError(f"execution {execution_id} not recorded in {timeout_s} s")


def test_each_node_runs_on_a_worker_of_its_queue(
    redis_server: RedisServer, data_dir: Path, queue_workers: None, history: HistoryStore
) -> None:
    routed = Settings.from_env(
        {
            "CONDUCTOR_REDIS_URL": redis_server.url,
            "CONDUCTOR_DATA_DIR": str(data_dir),
            "CONDUCTOR_QUEUE_ROUTES": ROUTES,
        }
    )
    stores = make_stores(routed)
    dispatcher = Dispatcher(create_app(routed), stores, default_registry())
    plan = dispatcher.submit(load_blueprint_text(ROUTED))
    client = redis.Redis.from_url(str(routed.redis_url))
    try:
        result = wait_for_result(client, stores, plan.execution_id, 30)
    finally:
        client.close()
    assert result["status"] == "succeeded", result["error"]

    assert recorded_workers(history, plan.execution_id) == EXPECTED_WORKER
    started = {
        event.node_id: event.data["worker"]
        for event in history.events(plan.execution_id)
        if event.type == EventType.NODE_STARTED
    }
    assert started == EXPECTED_WORKER
