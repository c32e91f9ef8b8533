"""Priorities through the API and a real worker: a priority-9 execution's node overtakes a
backlog of low-priority nodes waiting in the same queue (a worker running one task at a time)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from conductor.client import ConductorClient
from conductor.embedded import ApiProcess, RedisServer, WorkerProcess

pytestmark = pytest.mark.e2e

QUEUE = "prio"
BACKLOG = 200


def delays(count: int, name: str) -> dict[str, object]:
    nodes = [
        {"id": f"d{i}", "type": "delay", "queue": QUEUE, "parameters": {"ms": 10}}
        for i in range(count)
    ]
    return {"id": name, "name": name, "nodes": nodes}


@pytest.fixture(scope="module")
def prio_worker(redis_server: RedisServer, worker_env: dict[str, str]) -> Iterator[None]:
    """One worker on its own queue running one task at a time."""
    started = WorkerProcess(
        redis_server.url, concurrency=1, queues=[QUEUE], env=worker_env, name="prio@%h"
    ).start()
    yield
    started.stop()


@pytest.fixture
def client(api: ApiProcess, prio_worker: None) -> Iterator[ConductorClient]:
    with ConductorClient(api.url) as opened:
        yield opened


def test_a_priority_9_node_overtakes_a_backlog(client: ConductorClient) -> None:
    backlog = client.submit(delays(BACKLOG, "backlog"), priority=0)
    sent = time.time()
    urgent = client.submit(delays(1, "urgent"), priority=9)
    try:
        assert client.wait(urgent.id, timeout_s=60).status == "succeeded"
        started = client.get(urgent.id).nodes[0].started_at
        assert started is not None
        starts = [n.started_at for n in client.get(backlog.id).nodes if n.started_at]
        overtaken = [at for at in starts if sent <= at < started]
        # Without priorities it would wait for what is left of the 200; with them, only for
        # what the worker had taken (one running, one prefetched) when it was sent.
        assert len(overtaken) <= 3, f"{len(overtaken)} backlog nodes started before it"
        assert len(starts) < BACKLOG / 2, "the backlog was mostly still waiting"
    finally:
        client.cancel(backlog.id)


@pytest.mark.parametrize(("option", "value"), [("--priority", "10"), ("--concurrency-key", "a b")])
def test_the_command_line_refuses_bad_values_naming_the_option(option: str, value: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "conductor", "run", "x.yaml", option, value],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert option in done.stderr
    assert "Traceback" not in done.stderr
