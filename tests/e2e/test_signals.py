"""Signals and parked waits through real workers (docs/waits.md): a `wait-for-signal` node
holds no worker while it waits, a signal (API, CLI, client) continues it with its payload, its
timeout fails it or continues with a default, a long `delay` frees its worker, and a wait
outlives the worker that parked it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conductor.client import ConductorClient
from conductor.embedded import ApiProcess, RedisServer, WorkerProcess
from conductor.model.loader import blueprint_from_data
from conductor.model.settings import Settings
from conductor.services import Services
from conductor.signals import Signals
from conductor.waiting import wait_for_result
from storage.state import ExecutionStatus
from tests.conftest import REPO, _wait_until_live


def approval(timeout_ms: int = 60_000, **extra: Any) -> dict[str, Any]:
    """start -> wait for `approve` -> use the payload."""
    return {
        "id": "approval",
        "name": "Approval",
        "nodes": [
            {"id": "start", "type": "edit-fields", "parameters": {"values": {"order": 7}}},
            {
                "id": "approve",
                "type": "wait-for-signal",
                "parameters": {"name": "approve", "timeout": timeout_ms, **extra},
            },
            {
                "id": "after",
                "type": "transform",
                "parameters": {"transformFunction": "x => ({decided: x})"},
            },
        ],
        "edges": [
            {"source": "start", "target": "approve"},
            {"source": "approve", "target": "after"},
        ],
    }


def decided(data: Any) -> Any:
    """What the `after` node got from the wait."""
    return data["after"]["result"]["decided"]


def parked(services: Services, execution_id: str, timeout_s: float = 30) -> dict[str, str]:
    """Until a node of the execution is parked; the parked nodes."""
    deadline = time.monotonic() + timeout_s
    while not (found := services.stores.state.parked(execution_id)):
        assert time.monotonic() < deadline, f"nothing of {execution_id} parked"
        time.sleep(0.05)
    return found


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    """Services on the session's Redis."""
    found = Services.from_settings(settings)
    yield found
    found.close()


@pytest.fixture
def client(api: ApiProcess) -> Iterator[ConductorClient]:
    """The Python client of the session's API."""
    with ConductorClient(api.url) as found:
        yield found


def test_a_signal_through_the_api_continues_with_its_payload(
    client: ConductorClient, services: Services, api: ApiProcess
) -> None:
    execution_id = client.submit(approval()).id
    assert parked(services, execution_id) == {"approve": "approve"}
    view = client.get(execution_id)
    assert view.status == "running"
    nodes = {node.node_id: node for node in view.nodes}
    assert nodes["approve"].status == "running"
    assert nodes["approve"].waiting is not None and nodes["approve"].waiting.signal == "approve"
    assert nodes["start"].waiting is None
    response = httpx.post(
        f"{api.url}/v1/executions/{execution_id}/signals/approve", json={"by": "ada", "ok": True}
    )
    assert response.status_code == 202, response.text
    assert response.json() == {
        "execution_id": execution_id,
        "signal": "approve",
        "woke": ["approve"],
    }
    result = client.wait(execution_id, timeout_s=30)
    assert result.status == "succeeded", result
    assert decided(result.data) == {"by": "ada", "ok": True}
    assert all(node.waiting is None for node in client.get(execution_id).nodes)
    events = [e for e in client.events(execution_id) if e.node_id == "approve"]
    waiting = [e for e in events if e.type == "node.progress"]
    assert waiting[0].data["waiting"]["signal"] == "approve"
    assert events[-1].type == "node.succeeded"


def test_a_signal_sent_before_the_node_waits_is_kept_for_it(
    client: ConductorClient, services: Services
) -> None:
    blueprint = approval()
    blueprint["nodes"][0] = {"id": "start", "type": "delay", "parameters": {"ms": 1500}}
    execution_id = client.submit(blueprint).id
    receipt = client.signal(execution_id, "approve", {"items": [1, 2, 3]})
    assert receipt == {"execution_id": execution_id, "signal": "approve", "woke": []}
    assert services.stores.state.parked(execution_id) == {}
    result = client.wait(execution_id, timeout_s=30)
    assert result.status == "succeeded", result
    assert decided(result.data) == {"items": [1, 2, 3]}


def test_the_timeout_fails_the_node_naming_its_signal(client: ConductorClient) -> None:
    execution_id = client.submit(approval(timeout_ms=1500)).id
    result = client.wait(execution_id, timeout_s=30)
    assert result.status == "failed"
    assert result.error is not None
    assert result.error.code == "TIMEOUT"
    assert result.error.node_id == "approve"
    assert "'approve'" in result.error.message


def test_on_timeout_continue_takes_the_default(client: ConductorClient) -> None:
    blueprint = approval(timeout_ms=1000, onTimeout="continue", defaultResult="rejected")
    result = client.wait(client.submit(blueprint).id, timeout_s=30)
    assert result.status == "succeeded", result
    assert decided(result.data) == "rejected"
    assert result.trace is not None


@pytest.mark.parametrize(("signal", "taken"), [(True, "proceed"), (False, "escalate")])
def test_an_if_after_the_wait_takes_the_timeout_branch(
    client: ConductorClient, services: Services, signal: bool, taken: str
) -> None:
    blueprint = {
        "id": "escalation",
        "name": "Escalation",
        "nodes": [
            {
                "id": "approve",
                "type": "wait-for-signal",
                "parameters": {"name": "approve", "timeout": 1500, "onTimeout": "continue"},
            },
            {"id": "late", "type": "if", "parameters": {"condition": "$inputs.default.timedOut"}},
            {"id": "escalate", "type": "edit-fields", "parameters": {"values": {"to": "boss"}}},
            {"id": "proceed", "type": "edit-fields", "parameters": {"values": {"to": "shop"}}},
        ],
        "edges": [
            {"source": "approve", "target": "late"},
            {"source": "late", "target": "escalate", "sourceHandle": "true"},
            {"source": "late", "target": "proceed", "sourceHandle": "false"},
        ],
    }
    execution_id = client.submit(blueprint).id
    if signal:
        parked(services, execution_id)
        client.signal(execution_id, "approve", "ok")
    result = client.wait(execution_id, timeout_s=30)
    assert result.status == "succeeded", result
    assert result.trace is not None
    statuses = {step.node_id: step.status for step in result.trace}
    skipped = {"escalate", "proceed"} - {taken}
    assert statuses[taken] == "succeeded" and statuses[skipped.pop()] == "skipped"


def test_the_cli_sends_a_signal(
    client: ConductorClient, services: Services, api_env: dict[str, str], api: ApiProcess
) -> None:
    execution_id = client.submit(approval()).id
    parked(services, execution_id)

    def signal(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "conductor", "signal", *args]
        return subprocess.run(
            command, env=api_env, capture_output=True, text=True, timeout=60, cwd=REPO, check=False
        )

    bad = signal(execution_id, "approve", "--data", "{not json")
    assert bad.returncode == 2, bad.stderr
    assert "--data" in bad.stderr
    assert signal("no-such-execution", "approve").returncode == 1
    sent = signal(execution_id, "approve", "--data", '{"n": 12345678901234567}', "--json")
    assert sent.returncode == 0, sent.stderr
    assert json.loads(sent.stdout)["woke"] == ["approve"]
    assert client.wait(execution_id, timeout_s=30).status == "succeeded"
    output = httpx.get(f"{api.url}/v1/executions/{execution_id}/nodes/approve/output").json()
    # the payload as sent, digit for digit (JavaScript downstream would round it)
    assert output == {"result": {"n": 12345678901234567}, "signal": "approve", "timedOut": False}


def test_signals_that_cannot_be_delivered_are_refused(
    client: ConductorClient, services: Services, api: ApiProcess
) -> None:
    execution_id = client.submit(approval()).id
    parked(services, execution_id)
    url = f"{api.url}/v1/executions/{execution_id}/signals"
    unknown = httpx.post(f"{api.url}/v1/executions/nope/signals/approve", json=1)
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    nobody = httpx.post(f"{url}/reject", json=1)
    assert nobody.status_code == 409
    assert "'reject'" in nobody.json()["detail"]
    assert httpx.post(f"{url}/bad%20name", json=1).status_code == 422
    client.cancel(execution_id)
    result = client.wait(execution_id, timeout_s=30)
    assert result.status == "cancelled"
    late = httpx.post(f"{url}/approve", json=1)
    assert late.status_code == 409
    assert "cancelled" in late.json()["detail"]


def test_each_item_of_a_loop_takes_one_signal(client: ConductorClient, services: Services) -> None:
    """Two items wait for `vote` in parallel; two signals, one each, oldest first."""
    blueprint = {
        "id": "votes",
        "name": "Votes",
        "nodes": [
            {
                "id": "each",
                "type": "loop",
                "parameters": {"items": ["x", "y"], "concurrency": 2},
                "nodes": [
                    {"id": "vote", "type": "wait-for-signal", "parameters": {"name": "vote"}}
                ],
                "edges": [],
            }
        ],
        "edges": [],
    }
    execution_id = client.submit(blueprint).id
    deadline = time.monotonic() + 30
    while len(services.stores.state.parked(execution_id)) < 2:
        assert time.monotonic() < deadline, "the items never parked"
        time.sleep(0.05)
    client.signal(execution_id, "vote", "first")
    client.signal(execution_id, "vote", "second")
    result = client.wait(execution_id, timeout_s=30)
    assert result.status == "succeeded", result
    assert sorted(result.data["each"]["result"]) == ["first", "second"]


# A private stack: its own Redis and one worker of concurrency 1, which tests restart.


class Stack:
    """A Redis and one restartable worker (concurrency 1)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.redis = RedisServer(root / "redis").start()
        self.env = {"CONDUCTOR_DATA_DIR": str(root / "data"), "CONDUCTOR_RECONCILE_EVERY_S": "1"}
        self.settings = Settings.from_env({**self.env, "CONDUCTOR_REDIS_URL": self.redis.url})
        self.services = Services.from_settings(self.settings)
        self.worker: WorkerProcess | None = None
        self.starts = 0

    def start_worker(self) -> None:
        self.starts += 1
        name = f"signals{self.starts}@%h"
        log = self.root / f"worker{self.starts}.log"
        self.worker = WorkerProcess(
            self.redis.url, concurrency=1, env=self.env, name=name, log_path=log
        ).start()
        _wait_until_live(self.redis.url, f"signals{self.starts}@")

    def stop_worker(self) -> None:
        assert self.worker is not None
        self.worker.stop()
        self.worker = None

    def submit(self, blueprint: dict[str, Any]) -> str:
        return self.services.dispatcher.submit(blueprint_from_data(blueprint)).execution_id

    def result(self, execution_id: str, timeout_s: float = 60) -> dict[str, Any]:
        events = self.services.backend.event_source()
        return wait_for_result(events, self.services.stores, execution_id, timeout_s)

    def close(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        self.services.close()
        self.redis.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The private stack, its worker started."""
    found = Stack(tmp_path_factory.mktemp("signals"))
    found.start_worker()
    yield found
    found.close()


def test_a_signal_reaches_an_execution_whose_worker_was_restarted(stack: Stack) -> None:
    """The worker that parked the node is replaced by a new process; the signal reaches the
    execution through it."""
    execution_id = stack.submit(approval())
    parked(stack.services, execution_id)
    stack.stop_worker()
    stack.start_worker()
    receipt = Signals(stack.services.dispatcher).send(execution_id, "approve", {"ok": 1})
    assert receipt.woken == ("approve",)
    result = stack.result(execution_id)
    assert result["status"] == "succeeded", result
    assert decided(result["data"]) == {"ok": 1}


def test_a_long_delay_frees_its_worker_and_outlives_it(stack: Stack) -> None:
    """Concurrency 1: another execution runs while the delay waits; the delay's wake-up fires
    after the worker that parked it was replaced."""
    slow = {
        "id": "slow",
        "name": "Slow",
        "nodes": [{"id": "wait", "type": "delay", "parameters": {"ms": 8000, "timeout": 60_000}}],
        "edges": [],
    }
    quick = {
        "id": "quick",
        "name": "Quick",
        "nodes": [{"id": "a", "type": "edit-fields", "parameters": {"values": {"x": 1}}}],
        "edges": [],
    }
    started = time.monotonic()
    waiting = stack.submit(slow)
    assert parked(stack.services, waiting) == {"wait": ""}
    other = stack.result(stack.submit(quick), timeout_s=6)
    assert other["status"] == "succeeded"
    snapshot = stack.services.stores.state.snapshot(waiting, [])
    assert snapshot.execution is not None
    assert snapshot.execution.status is ExecutionStatus.RUNNING
    assert time.monotonic() - started < 8
    stack.stop_worker()
    stack.start_worker()
    result = stack.result(waiting)
    assert result["status"] == "succeeded", result
    assert time.monotonic() - started >= 8
    assert result["data"] == {"wait": {"result": {}, "waited_ms": 8000}}
