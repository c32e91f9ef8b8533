"""`conductor flower`: a real Flower on the session's Redis and worker, behind basic auth."""

from __future__ import annotations

import ast
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from conductor.cli import main
from conductor.embedded import RedisServer, ServiceProcess, WorkerProcess, free_port
from tests.e2e.conftest import RunBlueprint

AUTH = ("flower-user", "flower-pass")
BLUEPRINT = """
id: flower-demo
name: Flower demo
nodes:
  - {id: greet, type: edit-fields, parameters: {values: {message: hi}}}
  - {id: pause, type: delay, parameters: {ms: 10}}
edges: [{source: greet, target: pause}]
"""

Json = dict[str, Any]


@pytest.fixture(scope="module")
def flower(
    redis_server: RedisServer, worker_env: dict[str, str], worker: WorkerProcess
) -> Iterator[str]:
    """`conductor flower` with CONDUCTOR_FLOWER_BASIC_AUTH; yields its URL once it answers."""
    port = free_port()
    env = {
        **worker_env,
        "CONDUCTOR_REDIS_URL": redis_server.url,
        "CONDUCTOR_FLOWER_BASIC_AUTH": ":".join(AUTH),
        "FLOWER_UNAUTHENTICATED_API": "",  # whatever the caller's shell says
    }
    process = ServiceProcess(["flower", "--port", str(port)], env).start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(f"{url}/healthcheck"), "Flower to answer")
        yield url
    finally:
        process.stop()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def wait_until(check: Callable[[], Any], what: str, timeout_s: float = 20.0) -> Any:
    """Poll `check` until it returns something true."""
    deadline = time.monotonic() + timeout_s
    while not (found := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
    return found


def test_flower_lists_the_worker_and_the_node_tasks(
    flower: str, run_blueprint: RunBlueprint
) -> None:
    with httpx.Client(base_url=flower, auth=AUTH, timeout=10) as client:

        def node_tasks(execution_id: str) -> list[Json] | None:
            tasks: Json = client.get("/api/tasks", params={"taskname": "conductor.node"}).json()
            mine = [task for task in tasks.values() if execution_id in (task["args"] or "")]
            done = len(mine) == 2 and all(task["state"] == "SUCCESS" for task in mine)
            return mine if done else None

        # Flower answers HTTP before its event receiver has joined; events sent before that
        # are not seen, so run the Blueprint again until Flower has caught one whole run.
        deadline = time.monotonic() + 40
        while True:
            result = run_blueprint(BLUEPRINT)
            assert result["success"], result
            execution_id = result["id"]
            try:
                tasks = wait_until(partial(node_tasks, execution_id), "the node tasks", 5)
                break
            except AssertionError:
                assert time.monotonic() < deadline, "Flower never showed a whole run"

        def workers_seen() -> Json:
            workers: Json = client.get("/api/workers", params={"refresh": 1}).json()
            return workers if any(name.startswith("e2e@") for name in workers) else {}

        workers = wait_until(workers_seen, "the worker")  # Flower asks workers, 1 s timeout
    # Flower shows Celery's repr of the arguments: (execution_id, node_id), {node_type: ...}
    shown = {
        (*ast.literal_eval(task["args"]), ast.literal_eval(task["kwargs"])["node_type"])
        for task in tasks
    }
    assert shown == {(execution_id, "greet", "edit-fields"), (execution_id, "pause", "delay")}
    assert {task["state"] for task in tasks} == {"SUCCESS"}
    assert {task["worker"] for task in tasks} <= set(workers)


def test_flower_refuses_requests_without_the_password(flower: str) -> None:
    for path in ("/api/workers", "/api/tasks", "/"):
        assert httpx.get(flower + path, timeout=5).status_code == 401, path
        wrong = httpx.get(flower + path, auth=("flower-user", "wrong"), timeout=5)
        assert wrong.status_code == 401, path
    assert httpx.get(flower + "/", auth=AUTH, timeout=5).status_code == 200


def test_a_malformed_password_setting_is_refused_before_flower_starts() -> None:
    env = {"CONDUCTOR_REDIS_URL": "redis://127.0.0.1:1/0", "CONDUCTOR_FLOWER_BASIC_AUTH": "admin"}
    result = CliRunner().invoke(main, ["flower"], env=env)
    assert result.exit_code == 2
    assert "user:password" in result.output
