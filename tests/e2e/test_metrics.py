"""GET /metrics on a real `conductor api`: executions, node durations, queues, live workers."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
import redis
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from conductor.embedded import ApiProcess, RedisServer, ServiceProcess, WorkerProcess
from conductor.model.settings import Settings
from storage.events import Event, EventType
from storage.history import HistoryStore, open_history
from storage.history_stats import execution_counts, node_durations
from storage.presence import RedisPresence
from storage.sql_history import open_sql_history
from storage.state import ExecutionStatus, NodeStatus
from tests.e2e.conftest import RunBlueprint
from workers.presence import PresenceBeacon, WorkerPresence, live_workers

pytestmark = pytest.mark.e2e

ROUTES = "image=metrics-cpu,http-request=metrics-io"
IDLE_QUEUES = {"conductor", "celery", "metrics-cpu", "metrics-io"}


def steps(delay_ms: int) -> str:
    """edit-fields -> delay: a Blueprint with two node types (a fresh id each time)."""
    return f"""
id: metrics-{uuid.uuid4().hex[:8]}
name: Metrics
nodes:
  - {{id: make, type: edit-fields, parameters: {{values: {{n: 1}}}}}}
  - {{id: wait, type: delay, parameters: {{ms: {delay_ms}}}}}
edges: [{{source: make, target: wait}}]
"""


FAILING = """
id: metrics-failing
name: Metrics failing
nodes:
  - {id: boom, type: transform, parameters: {transformFunction: "x => { throw new Error('no') }", retries: 0}}
"""


@pytest.fixture(scope="module")
def recorder(api_env: dict[str, str]) -> Iterator[ServiceProcess]:
    """`conductor recorder` into the history store the session's API reads."""
    process = ServiceProcess(["recorder", "--name", "e2e-metrics-recorder"], api_env).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def routed_api(api_env: dict[str, str], worker: WorkerProcess) -> Iterator[ApiProcess]:
    """An API configured with queue routes (its /metrics lists the routed queues too)."""
    process = ApiProcess({**api_env, "CONDUCTOR_QUEUE_ROUTES": ROUTES}).start()
    yield process
    process.stop()


@pytest.fixture
def history(api_env: dict[str, str]) -> Iterator[HistoryStore]:
    store = open_history(Settings.from_env(api_env).history_url)
    yield store
    store.close()


def wait_until(condition: Callable[[], bool], timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.1)


def scrape(api: ApiProcess) -> dict[str, Metric]:
    response = httpx.get(api.url + "/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {family.name: family for family in text_string_to_metric_families(response.text)}


def values(family: Metric, suffix: str = "", **labels: str) -> list[float]:
    """Sample values of a family whose name ends with `suffix` and whose labels include these."""
    return [
        sample.value
        for sample in family.samples
        if sample.name == family.name + suffix and labels.items() <= sample.labels.items()
    ]


def run_and_record(
    run_blueprint: RunBlueprint, history: HistoryStore, texts: list[str]
) -> list[dict[str, object]]:
    results = [run_blueprint(text) for text in texts]
    ids = [str(result["id"]) for result in results]

    def all_recorded() -> bool:
        records = [history.execution(execution_id) for execution_id in ids]
        return all(record is not None and record.status.is_terminal for record in records)

    wait_until(all_recorded)
    return results


def test_metrics_after_runs(
    run_blueprint: RunBlueprint,
    history: HistoryStore,
    recorder: ServiceProcess,
    routed_api: ApiProcess,
    redis_client: redis.Redis,
) -> None:
    results = run_and_record(run_blueprint, history, [steps(60), steps(60), FAILING])
    assert [result["status"] for result in results] == ["succeeded", "succeeded", "failed"]
    families = scrape(routed_api)

    executions = families["conductor_executions"]
    assert executions.type == "gauge"
    assert {sample.labels["status"] for sample in executions.samples} == {
        status.value for status in ExecutionStatus
    }
    assert values(executions, status="succeeded")[0] >= 2
    assert values(executions, status="failed")[0] >= 1

    durations = families["conductor_node_duration_seconds"]
    assert durations.type == "histogram"
    outcomes = (
        ("delay", "succeeded", 2),
        ("edit-fields", "succeeded", 2),
        ("transform", "failed", 1),
    )
    for node_type, status, at_least in outcomes:
        labels = {"type": node_type, "status": status}
        buckets = [
            (float(sample.labels["le"]), sample.value)
            for sample in durations.samples
            if sample.name.endswith("_bucket") and labels.items() <= sample.labels.items()
        ]
        counts = [count for _, count in sorted(buckets)]
        assert counts == sorted(counts), f"{node_type}: buckets are cumulative"
        (count,) = values(durations, "_count", **labels)
        assert counts[-1] == count >= at_least
        (total_s,) = values(durations, "_sum", **labels)
        assert total_s >= 0
    (delay_s,) = values(durations, "_sum", type="delay", status="succeeded")
    assert delay_s >= 2 * 0.06  # two delays of 60 ms, at least

    depth = families["conductor_queue_depth"]
    assert {sample.labels["queue"] for sample in depth.samples} >= IDLE_QUEUES
    for queue in IDLE_QUEUES:
        assert values(depth, queue=queue) == [0], f"{queue} is idle"

    (live,) = values(families["conductor_workers_live"])
    assert live >= 1
    consumers = families["conductor_queue_workers"]
    assert values(consumers, queue="conductor")[0] >= 1
    assert values(consumers, queue="metrics-io") == [0]  # routed, but no worker consumes it


def test_queue_depth_counts_waiting_messages(
    routed_api: ApiProcess, redis_client: redis.Redis
) -> None:
    # Nothing consumes this routed queue: messages put there stay and are counted.
    redis_client.rpush("metrics-io", "m1", "m2")
    redis_client.rpush("metrics-io\x06\x163", "m3")  # kombu's list for priority 3
    try:
        depth = scrape(routed_api)["conductor_queue_depth"]
        assert values(depth, queue="metrics-io") == [3]
    finally:
        redis_client.delete("metrics-io", "metrics-io\x06\x163")


def test_the_default_api_reports_its_queues(api: ApiProcess) -> None:
    families = scrape(api)
    depth = families["conductor_queue_depth"]
    assert {sample.labels["queue"] for sample in depth.samples} >= {"conductor", "celery"}
    assert values(families["conductor_workers_live"])[0] >= 1


def test_a_worker_is_live_while_it_runs(
    redis_server: RedisServer, worker_env: dict[str, str], redis_client: redis.Redis
) -> None:
    name = f"metrics-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"
    process = WorkerProcess(
        redis_server.url, concurrency=1, queues=["metrics-gpu"], env=worker_env, name=name
    ).start()
    try:
        wait_until(
            lambda: name in {w.name for w in live_workers(RedisPresence(redis_client))},
            timeout_s=30,
        )
        (presence,) = [w for w in live_workers(RedisPresence(redis_client)) if w.name == name]
        assert presence.queues == ["metrics-gpu"]
    finally:
        process.stop()
    # A warm shutdown withdraws the presence at once (a crash would let it expire).
    assert name not in {w.name for w in live_workers(RedisPresence(redis_client))}


def test_presence_expires_without_refresh(redis_client: redis.Redis) -> None:
    presence = WorkerPresence(
        name=f"ghost-{uuid.uuid4().hex[:6]}", queues=["q"], pid=1, started_at=time.time()
    )
    beacon = PresenceBeacon(RedisPresence(redis_client), presence, ttl_s=1)
    beacon.announce()  # announced once, never refreshed: as if the worker was killed
    assert presence in live_workers(RedisPresence(redis_client))
    wait_until(lambda: presence not in live_workers(RedisPresence(redis_client)), timeout_s=5)


def event(
    execution_id: str, seq: int, kind: EventType, node_id: str | None, **data: object
) -> Event:
    return Event(
        id=f"{execution_id}-{seq}",
        execution_id=execution_id,
        seq=seq,
        type=kind,
        node_id=node_id,
        ts=1000.0 + seq,
        data=dict(data),
    )


def test_history_stats_count_in_sql() -> None:
    store = open_sql_history("sqlite://")
    try:
        batch = [
            event("x", 1, EventType.EXECUTION_QUEUED, None, blueprint_id="b", blueprint_name="B")
        ]
        for seq, (node, kind, ms) in enumerate(
            [("a", "delay", 3), ("b", "delay", 40), ("c", "delay", 70_000), ("d", "image", 7)],
            start=2,
        ):
            batch.append(event("x", seq * 2, EventType.NODE_STARTED, node, type=kind, worker="w"))
            batch.append(event("x", seq * 2 + 1, EventType.NODE_SUCCEEDED, node, duration_ms=ms))
        batch.append(event("x", 20, EventType.NODE_STARTED, "e", type="delay", worker="w"))
        batch.append(event("x", 21, EventType.NODE_STARTED, "f", type="image", worker="w"))
        batch.append(event("x", 22, EventType.NODE_FAILED, "f", error={"code": "X"}))
        store.record(batch)  # node e is still running: not counted
        assert execution_counts(store)[ExecutionStatus.QUEUED] == 1
        stats = {
            (row.type, row.status): row for row in node_durations(store, bounds_ms=(5, 50, 60_000))
        }
        assert set(stats) == {("delay", "succeeded"), ("image", "succeeded"), ("image", "failed")}
        delay = stats["delay", NodeStatus.SUCCEEDED]
        assert (delay.bucket_counts, delay.count, delay.sum_ms) == ([1, 2, 2], 3, 70_043)
        assert stats["image", NodeStatus.SUCCEEDED].bucket_counts == [0, 1, 1]
        failed = stats["image", NodeStatus.FAILED]  # no duration in the event: ts difference
        assert (failed.bucket_counts, failed.sum_ms) == ([0, 0, 1], 1000)
    finally:
        store.close()
