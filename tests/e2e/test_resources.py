"""Node resource limits and run profiles through a real worker: a limited node over its memory
or CPU fails with the code and the limit while its worker takes the next task, pool children
recycle above CONDUCTOR_WORKER_MAX_MEMORY_MB, and each run's profile (queue wait, CPU time,
peak memory, bytes) matches what the test measures, in the API, history and /metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from conductor.client import ConductorClient
from conductor.embedded import ApiProcess, RedisServer, ServiceProcess, WorkerProcess
from conductor.model.loader import load_blueprint_text
from conductor.model.settings import Settings
from conductor.services import Services
from conductor.waiting import wait_for_result
from storage.history import HistoryStore, NodeRunRecord, open_history
from tests.e2e.conftest import RunBlueprint

pytestmark = pytest.mark.e2e

QUEUE = "limits"
MAX_MEMORY_MB = 200  # the limited worker's pool child is replaced above this
BIG_FILE = "resources-rows.csv"  # 13 MB of CSV: some 200 MB as rows in Python


@pytest.fixture(scope="module")
def limits_worker(
    redis_server: RedisServer, worker_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    """One pool process on its own queue (so queue waits are the test's), shell allowed, and
    children recycled above MAX_MEMORY_MB."""
    env = {
        **worker_env,
        "CONDUCTOR_ALLOW_SHELL": "1",
        "CONDUCTOR_WORKER_MAX_MEMORY_MB": str(MAX_MEMORY_MB),
    }
    log = tmp_path_factory.mktemp("logs") / "limits-worker.log"
    process = WorkerProcess(
        redis_server.url, concurrency=1, queues=[QUEUE], env=env, name="limits@%h", log_path=log
    ).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def services(redis_server: RedisServer, data_dir: Path) -> Iterator[Services]:
    settings = Settings.from_env({"CONDUCTOR_REDIS_URL": redis_server.url}).model_copy(
        update={"blob_dir": data_dir / "blobs"}
    )
    opened = Services.from_settings(settings)
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def recorder(api_env: dict[str, str]) -> Iterator[ServiceProcess]:
    process = ServiceProcess(["recorder", "--name", "e2e-resources-recorder"], api_env).start()
    yield process
    process.stop()


@pytest.fixture
def history(api_env: dict[str, str], recorder: ServiceProcess) -> Iterator[HistoryStore]:
    """The history store the recorder fills."""
    store = open_history(Settings.from_env(api_env).history_url)
    yield store
    store.close()


@pytest.fixture(scope="module")
def big_file(data_dir: Path) -> str:
    files = data_dir / "files"
    files.mkdir(parents=True, exist_ok=True)
    rows = "".join(f"{i},{i * 2},name{i},x{i}\n" for i in range(400_000))
    (files / BIG_FILE).write_text("a,b,c,d\n" + rows)
    return BIG_FILE


Run = Callable[..., dict[str, Any]]


@pytest.fixture
def run(services: Services, limits_worker: WorkerProcess) -> Run:
    """Run nodes (YAML list items) on the limited worker's queue; the result object."""

    def run_nodes(nodes: str, edges: str = "[]", timeout_s: float = 120) -> dict[str, Any]:
        plan = services.dispatcher.submit(load_blueprint_text(blueprint(nodes, edges)), {})
        events = services.backend.event_source()
        return wait_for_result(events, services.stores, plan.execution_id, timeout_s)

    return run_nodes


def blueprint(nodes: str, edges: str = "[]") -> str:
    return f"id: res-{uuid.uuid4().hex[:8]}\nname: Resources\nnodes:\n{nodes}\nedges: {edges}\n"


def pool_children(worker: WorkerProcess) -> list[int]:
    assert worker.process is not None
    return sorted(child.pid for child in psutil.Process(worker.process.pid).children())


def wait_until(condition: Callable[[], bool], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.1)


def recorded_run(history: HistoryStore, execution_id: str, node_id: str) -> NodeRunRecord:
    """The node's run once the recorder has stored its outcome."""
    found: dict[str, NodeRunRecord] = {}

    def recorded() -> bool:
        runs = {run.node_id: run for run in history.node_runs(execution_id)}
        if node_id in runs and runs[node_id].finished_at is not None:
            found["run"] = runs[node_id]
            return True
        return False

    wait_until(recorded)
    return found["run"]


# A program that burns ~1 s of CPU with ~200 MB resident, and says what it used (a second of
# CPU keeps the node's own work, some 0.1 s of it under load, well inside the 20 %).
MEASURED = (
    "import resource, time\n"
    "block = bytearray(200 << 20)\n"
    "for i in range(0, len(block), 4096): block[i] = 1\n"
    "t = time.process_time()\n"
    "while time.process_time() - t < 1.0: pass\n"
    "u = resource.getrusage(resource.RUSAGE_SELF)\n"
    "print(u.ru_utime + u.ru_stime, u.ru_maxrss * 1024)\n"
)


@pytest.fixture(scope="module")
def program(data_dir: Path) -> Path:
    path = data_dir / "measured.py"
    path.write_text(MEASURED)
    return path


def measured_node(node_id: str, program: Path, resources: str = "") -> str:
    command = json.dumps(f"python3 {program}")
    return (
        f"  - id: {node_id}\n    type: shell-command\n    queue: {QUEUE}\n"
        f"    parameters: {{command: {command}, timeout: 60000}}\n{resources}"
    )


def within(value: float | None, expected: float, tolerance: float = 0.2) -> bool:
    return value is not None and abs(value - expected) <= tolerance * expected


def test_memory_over_its_limit_fails_the_node_and_the_worker_takes_the_next_task(
    run: Run, big_file: str, limits_worker: WorkerProcess
) -> None:
    run(f"  - id: warm\n    type: delay\n    queue: {QUEUE}\n    parameters: {{ms: 1}}")
    before = pool_children(limits_worker)
    result = run(
        f"  - id: read\n    type: spreadsheet\n    queue: {QUEUE}\n"
        f"    parameters: {{path: {big_file}, retries: 0}}\n"
        "    resources: {memoryMb: 30}"
    )
    assert result["status"] == "failed"
    assert result["error"]["code"] == "MEMORY_LIMIT_EXCEEDED"
    assert "30 MB" in result["error"]["message"] and result["error"]["nodeId"] == "read"
    assert pool_children(limits_worker) == before  # only the node's own child ended
    after = run(
        f"  - id: next\n    type: edit-fields\n    queue: {QUEUE}\n"
        "    parameters: {values: {ok: true}}\n    resources: {memoryMb: 30}"
    )
    assert after["status"] == "succeeded", after
    assert after["data"]["next"]["result"] == {"ok": True}


def test_cpu_seconds_exceeded_fails_a_transform_with_timeout(run: Run) -> None:
    result = run(
        f"  - id: spin\n    type: transform\n    queue: {QUEUE}\n"
        "    parameters: {transformFunction: 'x => { while (true) {} }', timeout: 60000}\n"
        "    resources: {cpuSeconds: 1}"
    )
    assert result["status"] == "failed"
    assert result["error"]["code"] == "TIMEOUT", result["error"]
    assert "CPU time limit of 1 s" in result["error"]["message"]


def test_pool_children_recycle_above_the_worker_memory_limit(
    run: Run, big_file: str, limits_worker: WorkerProcess
) -> None:
    run(f"  - id: warm\n    type: delay\n    queue: {QUEUE}\n    parameters: {{ms: 1}}")
    before = pool_children(limits_worker)
    # In the pool process itself (no resources): its resident memory passes the limit.
    run(
        f"  - id: read\n    type: spreadsheet\n    queue: {QUEUE}\n"
        f"    parameters: {{path: {big_file}, retries: 0}}"
    )
    wait_until(lambda: pool_children(limits_worker) not in ([], before))
    after = run(f"  - id: next\n    type: delay\n    queue: {QUEUE}\n    parameters: {{ms: 1}}")
    assert after["status"] == "succeeded"


def test_a_runs_profile_matches_what_its_program_measured(
    run: Run,
    program: Path,
    history: HistoryStore,
    api: ApiProcess,
    api_env: dict[str, str],
) -> None:
    result = run(measured_node("limited", program, "    resources: {memoryMb: 2000}"))
    assert result["status"] == "succeeded", result["error"]
    cpu_s, peak_bytes = map(float, result["data"]["limited"]["stdout"].split())
    recorded = recorded_run(history, result["id"], "limited")
    assert within(recorded.cpu_ms, cpu_s * 1000), (recorded.cpu_ms, cpu_s)
    assert within(recorded.peak_rss_bytes, peak_bytes), (recorded.peak_rss_bytes, peak_bytes)
    assert recorded.output_bytes is not None and recorded.output_bytes > 0
    assert recorded.input_bytes is not None and recorded.queue_wait_ms is not None

    view = httpx.get(f"{api.url}/v1/executions/{result['id']}").json()
    node = next(n for n in view["nodes"] if n["node_id"] == "limited")
    assert (node["cpu_ms"], node["peak_rss_bytes"]) == (recorded.cpu_ms, recorded.peak_rss_bytes)
    with ConductorClient(api.url) as client:  # the Python client reads the same view
        by_client = {n.node_id: n for n in client.get(result["id"]).nodes}["limited"]
    assert (by_client.queue_wait_ms, by_client.output_bytes) == (
        recorded.queue_wait_ms,
        recorded.output_bytes,
    )

    shown = subprocess.run(
        [sys.executable, "-m", "conductor", "history", "show", result["id"]],
        env={**os.environ, **api_env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "wait" in shown and "cpu" in shown and "rss" in shown
    assert f"{recorded.cpu_ms} ms" in shown

    metrics = httpx.get(f"{api.url}/metrics").text
    assert 'conductor_node_cpu_seconds_count{type="shell-command"}' in metrics
    assert 'conductor_node_queue_wait_seconds_count{type="shell-command"}' in metrics


def test_cpu_of_an_unlimited_node_counts_the_program_it_ran(
    run: Run, program: Path, history: HistoryStore
) -> None:
    result = run(measured_node("free", program))
    assert result["status"] == "succeeded", result["error"]
    cpu_s, _ = map(float, result["data"]["free"]["stdout"].split())
    recorded = recorded_run(history, result["id"], "free")
    assert within(recorded.cpu_ms, cpu_s * 1000), (recorded.cpu_ms, cpu_s)


def test_queue_wait_is_the_time_a_node_waited_for_the_busy_worker(
    services: Services,
    limits_worker: WorkerProcess,
    run: Run,
    history: HistoryStore,
) -> None:
    run(f"  - id: warm\n    type: delay\n    queue: {QUEUE}\n    parameters: {{ms: 1}}")
    busy = f"  - id: busy\n    type: delay\n    queue: {QUEUE}\n    parameters: {{ms: 2000}}"
    waiting = f"  - id: waiting\n    type: delay\n    queue: {QUEUE}\n    parameters: {{ms: 1}}"
    first = services.dispatcher.submit(load_blueprint_text(blueprint(busy)), {})
    time.sleep(0.3)  # the busy node has started on the only pool process
    sent = time.time()
    second = services.dispatcher.submit(load_blueprint_text(blueprint(waiting)), {})
    events = services.backend.event_source()
    for plan in (first, second):
        assert wait_for_result(events, services.stores, plan.execution_id, 60)["success"]
    recorded = recorded_run(history, second.execution_id, "waiting")
    assert recorded.started_at is not None
    measured_ms = (recorded.started_at - sent) * 1000
    assert measured_ms > 1000  # it did wait for the busy node
    assert within(recorded.queue_wait_ms, measured_ms), (recorded.queue_wait_ms, measured_ms)


def test_history_show_marks_the_critical_path(
    run_blueprint: RunBlueprint,
    history: HistoryStore,
    api_env: dict[str, str],
) -> None:
    diamond = blueprint(
        "  - {id: a, type: delay, parameters: {ms: 1}}\n"
        "  - {id: fast, type: delay, parameters: {ms: 1}}\n"
        "  - {id: slow, type: delay, parameters: {ms: 600}}\n"
        "  - {id: d, type: delay, parameters: {ms: 1}}",
        "[{source: a, target: fast}, {source: a, target: slow}, "
        "{source: fast, target: d}, {source: slow, target: d}]",
    )
    result = run_blueprint(diamond)
    assert result["success"], result
    recorded_run(history, result["id"], "d")
    command = [sys.executable, "-m", "conductor", "history", "show", result["id"]]
    shown = subprocess.run(
        [*command, "--critical-path", "--json"],
        env={**os.environ, **api_env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(shown)["critical_path"] == ["a", "slow", "d"]
    text = subprocess.run(
        [*command, "--critical-path"],
        env={**os.environ, **api_env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    marked = [line.split()[1] for line in text.splitlines() if line.startswith("* ")]
    assert sorted(marked) == ["a", "d", "slow"]
    assert "critical path: a -> slow -> d" in text
