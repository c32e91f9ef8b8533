"""`shell-command` end to end: it runs only on a worker started with CONDUCTOR_ALLOW_SHELL=1."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conductor.embedded import RedisServer, WorkerProcess
from tests.e2e.conftest import RunBlueprint


@pytest.fixture(scope="module")
def shell_worker(redis_server: RedisServer, worker_env: dict[str, str]) -> Iterator[WorkerProcess]:
    """A worker that allows shell commands, consuming the `shell` queue only."""
    env = {**worker_env, "CONDUCTOR_ALLOW_SHELL": "1"}
    with WorkerProcess(redis_server.url, queues=["shell"], env=env, name="shell@%h") as process:
        yield process


def test_a_shell_node_runs_on_the_worker_that_allows_it(
    shell_worker: WorkerProcess, run_blueprint: RunBlueprint, data_dir: Path
) -> None:
    result = run_blueprint(
        """
id: shell
name: Shell
nodes:
  - id: greet
    type: shell-command
    queue: shell
    parameters: {command: "printf '%s, %s'", args: ["{{$input.word}}", world], stdin: ignored}
  - {id: where, type: shell-command, queue: shell, parameters: {command: pwd}}
  - {id: shout, type: transform, parameters: {transformFunction: "item => item.toUpperCase()"}}
edges: [{source: greet, target: shout}]
""",
        {"word": "hello"},
    )
    assert result["status"] == "succeeded", result["error"]
    assert result["data"]["shout"]["result"] == "HELLO, WORLD"
    assert result["data"]["where"]["result"].strip() == str((data_dir / "files").resolve())
    assert result["data"]["where"]["exitCode"] == 0
    workers = {step["nodeId"]: step["worker"] for step in result["trace"]}
    assert workers["greet"].startswith("shell@")
    assert workers["shout"].startswith("e2e@")


def test_the_default_worker_refuses_shell_commands(run_blueprint: RunBlueprint) -> None:
    result = run_blueprint(
        """
id: no-shell
name: No shell
nodes:
  - {id: sneaky, type: shell-command, parameters: {command: "echo hi"}}
"""
    )
    assert result["status"] == "failed"
    assert result["error"]["nodeId"] == "sneaky"
    assert result["error"]["code"] == "EXECUTION_FAILED"
    assert "CONDUCTOR_ALLOW_SHELL=1" in result["error"]["message"]


def test_a_failing_command_fails_the_execution_with_its_exit_code(
    shell_worker: WorkerProcess, run_blueprint: RunBlueprint
) -> None:
    result = run_blueprint(
        """
id: fail
name: Fail
nodes:
  - id: boom
    type: shell-command
    queue: shell
    parameters: {command: "sh -c", args: ["echo broken >&2; exit 7"], retries: 0}
"""
    )
    assert result["status"] == "failed"
    assert result["error"]["code"] == "EXECUTION_FAILED"
    assert "exited with code 7: broken" in result["error"]["message"]


def test_a_command_past_its_timeout_is_killed(
    shell_worker: WorkerProcess, run_blueprint: RunBlueprint
) -> None:
    started = time.monotonic()
    result = run_blueprint(
        """
id: slow
name: Slow
nodes:
  - id: nap
    type: shell-command
    queue: shell
    parameters: {command: "sh -c", args: ["sleep 30 & sleep 30"], timeout: 1000, retries: 0}
""",
        timeout_s=30,
    )
    assert result["status"] == "failed"
    assert result["error"]["code"] == "TIMEOUT"
    assert time.monotonic() - started < 15
