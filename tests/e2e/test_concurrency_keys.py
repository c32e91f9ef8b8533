"""Concurrency keys through the API, the client and the session's worker: a second execution
with the key waits queued (with a reason) until the first ends in any way, a third after it."""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from celery import Celery

from conductor.client import ConductorClient, ConflictError, Execution
from conductor.embedded import ApiProcess, RedisServer
from conductor.model.admission import Admission
from conductor.model.loader import blueprint_from_data
from conductor.model.settings import Settings
from conductor.reconciler import Reconciler, Repair
from conductor.services import Services
from storage.state import ExecutionStatus

pytestmark = pytest.mark.e2e


def blueprint(ms: int, *, fail: bool = False, max_running: int | None = None) -> dict[str, object]:
    """One delay node (or one that fails at once), with an optional maxRunning setting."""
    node: dict[str, object] = {"id": "wait", "type": "delay", "parameters": {"ms": ms}}
    if fail:
        throw = "x => { throw new Error('boom') }"
        node = {"id": "boom", "type": "transform", "parameters": {"transformFunction": throw}}
    found: dict[str, object] = {"id": f"keyed-{ms}", "name": "Keyed", "nodes": [node]}
    if max_running is not None:
        found["settings"] = {"concurrency": {"maxRunning": max_running}}
    return found


@pytest.fixture
def client(api: ApiProcess) -> Iterator[ConductorClient]:
    with ConductorClient(api.url) as opened:
        yield opened


@pytest.fixture
def key() -> str:
    return f"customer-{uuid.uuid4().hex[:8]}"


def wait_started(client: ConductorClient, execution_id: str, timeout_s: float = 30) -> Execution:
    deadline = time.monotonic() + timeout_s
    while (found := client.get(execution_id)).status == "queued":
        assert time.monotonic() < deadline, f"{execution_id} never started"
        time.sleep(0.05)
    return found


def test_a_key_holds_the_second_until_the_first_ends_and_the_third_after_it(
    client: ConductorClient, key: str
) -> None:
    first = client.submit(blueprint(1500), concurrency_key=key)
    wait_started(client, first.id)
    second = client.submit(blueprint(300), concurrency_key=key, priority=7)
    third = client.submit(blueprint(300), concurrency_key=key)
    held = client.get(second.id)
    assert held.status == "queued", "a second execution with the key must wait"
    assert held.queued_reason is not None and key in held.queued_reason
    assert held.concurrency_key == key and held.priority == 7
    assert held.line_position == 1
    behind = client.get(third.id)
    assert (behind.status, behind.line_position) == ("queued", 2)
    assert client.get(first.id).line_position is None
    queued = next(client.events(second.id))
    assert queued.type == "execution.queued"
    assert queued.data["reason"] == held.queued_reason
    results = [client.wait(e.id, timeout_s=60) for e in (first, second, third)]
    assert [r.status for r in results] == ["succeeded"] * 3
    ended = [client.get(e.id) for e in (first, second, third)]
    assert ended[1].queued_reason is None
    for before, after in itertools.pairwise(ended):
        assert before.finished_at is not None and after.started_at is not None
        assert after.started_at >= before.finished_at - 0.05, "one at a time, first in first out"


def test_a_cancel_frees_the_slot(client: ConductorClient, key: str) -> None:
    first = client.submit(blueprint(60_000), concurrency_key=key)
    wait_started(client, first.id)
    second = client.submit(blueprint(10), concurrency_key=key)
    assert client.get(second.id).status == "queued"
    client.cancel(first.id)
    assert client.wait(second.id, timeout_s=30).status == "succeeded"


def test_a_cancel_while_waiting_leaves_the_line(client: ConductorClient, key: str) -> None:
    first = client.submit(blueprint(1000), concurrency_key=key)
    second = client.submit(blueprint(10), concurrency_key=key)
    third = client.submit(blueprint(10), concurrency_key=key)
    with pytest.raises(ConflictError, match="queued"):  # no pause in line: its resume would skip it
        client.pause(second.id)
    client.cancel(second.id)
    assert client.wait(second.id, timeout_s=10).status == "cancelled"
    assert client.wait(third.id, timeout_s=30).status == "succeeded"
    assert client.get(first.id).status == "succeeded"


def test_a_failure_frees_the_slot(client: ConductorClient, key: str) -> None:
    first = client.submit(blueprint(0, fail=True), concurrency_key=key)
    second = client.submit(blueprint(10), concurrency_key=key)
    assert client.wait(first.id, timeout_s=60).status == "failed"
    assert client.wait(second.id, timeout_s=30).status == "succeeded"


def test_the_blueprint_sets_how_many_run_at_once(client: ConductorClient, key: str) -> None:
    both = [client.submit(blueprint(1500, max_running=2), concurrency_key=key) for _ in range(2)]
    third = client.submit(blueprint(1500, max_running=2), concurrency_key=key)
    assert all(wait_started(client, e.id).status == "running" for e in both)
    assert client.get(third.id).status == "queued"
    assert client.wait(third.id, timeout_s=60).status == "succeeded"


def test_bad_priorities_and_keys_are_refused_naming_the_field(api: ApiProcess) -> None:
    for field, value in (("priority", 10), ("priority", -1), ("priority", "9"),
                         ("concurrency_key", ""), ("concurrency_key", "a b")):  # fmt: skip
        body = {"blueprint": blueprint(1), field: value}
        answer = httpx.post(f"{api.url}/v1/executions", json=body, timeout=10)
        assert answer.status_code == 422, (field, value, answer.text)
        problem = answer.json()
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert [e["path"] for e in problem["errors"]] == [f"body.{field}"]
    invalid = blueprint(1, max_running=0)
    answer = httpx.post(f"{api.url}/v1/executions", json={"blueprint": invalid}, timeout=10)
    assert answer.status_code == 422
    assert "blueprint.settings.concurrency.maxRunning" in answer.text


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    opened = Services.from_settings(settings)
    yield opened
    opened.close()


def parked(services: Services, key: str) -> tuple[str, str]:
    """An execution with `key` whose node waits in a queue no worker consumes, and one with
    the same key waiting in line behind it (for the session's worker)."""
    queue = f"parked-{uuid.uuid4().hex[:8]}"
    stuck = {"id": "stuck", "type": "delay", "queue": queue, "parameters": {"ms": 1}}
    first = services.dispatcher.submit(
        blueprint_from_data({"id": "parked", "name": "Parked", "nodes": [stuck]}),
        admission=Admission(concurrency_key=key),
    )
    second = services.dispatcher.submit(
        blueprint_from_data(blueprint(10)), admission=Admission(concurrency_key=key)
    )
    meta = services.stores.state.snapshot(second.execution_id, []).execution
    assert meta is not None and meta.queued_reason is not None
    return first.execution_id, second.execution_id


def test_an_end_the_reconciler_finalizes_frees_the_slot(
    client: ConductorClient, services: Services, key: str
) -> None:
    """The first's node failed and its worker died before ending the execution: the
    reconciler ends it, and the second starts."""
    first, second = parked(services, key)
    state = services.stores.state
    assert state.fail(first, "stuck", {"code": "EXECUTION_FAILED", "message": "worker lost"})
    checker = Reconciler(services.dispatcher, state, stall_s=1)
    assert checker.check(first, state.clock_ms()) is Repair.FINALIZED
    assert client.wait(second, timeout_s=30).status == "succeeded"
    assert client.get(first).status == "failed"


def test_the_reconciler_reclaims_a_slot_an_ended_execution_kept(
    client: ConductorClient, services: Services, key: str
) -> None:
    """The first ended, but whoever ended it died before giving its slot back."""
    first, second = parked(services, key)
    result = json.dumps({"id": first, "status": "failed"})
    assert services.stores.state.finish(first, ExecutionStatus.FAILED, result)
    checker = Reconciler(services.dispatcher, services.stores.state, stall_s=1)
    deadline = time.monotonic() + 30
    while client.get(second).status == "queued":  # a pass runs unless another worker's does
        assert time.monotonic() < deadline, "the slot was never reclaimed"
        checker.run_once()
        time.sleep(0.2)
    assert client.wait(second, timeout_s=30).status == "succeeded"


def test_a_retry_waits_in_line_while_another_holds_the_slot(
    client: ConductorClient, key: str
) -> None:
    failed = client.submit(blueprint(0, fail=True), concurrency_key=key)
    assert client.wait(failed.id, timeout_s=60).status == "failed"
    holder = client.submit(blueprint(1500), concurrency_key=key)
    wait_started(client, holder.id)
    client.retry(failed.id)
    waiting = client.get(failed.id)
    assert waiting.queued_reason is not None, "a retry takes a slot like a new execution"
    assert client.wait(holder.id, timeout_s=60).status == "succeeded"
    again = client.wait(failed.id, timeout_s=60)
    assert again.status == "failed"  # it throws again: what matters is when it ran
    ended, retried = client.get(holder.id), client.get(failed.id)
    assert ended.finished_at is not None
    boom = retried.nodes[0]
    assert boom.started_at is not None and boom.started_at >= ended.finished_at - 0.05


def test_celery_services_submit_with_a_key_and_a_priority(
    client: ConductorClient, redis_server: RedisServer, key: str
) -> None:
    app = Celery(broker=redis_server.url, backend=redis_server.url)
    try:
        kwargs = {"blueprint": blueprint(10), "concurrency_key": key, "priority": 8}
        execution_id = app.send_task("conductor.submit", kwargs=kwargs).get(timeout=30)
        found = client.get(execution_id)
        assert (found.concurrency_key, found.priority) == (key, 8)
        assert client.wait(execution_id, timeout_s=30).status == "succeeded"
        refused = app.send_task("conductor.submit", kwargs={**kwargs, "priority": 12})
        with pytest.raises(Exception, match="priority"):
            refused.get(timeout=30)
    finally:
        app.close()
