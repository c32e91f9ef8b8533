"""The `conductor` command as a user runs it: separate processes, real Redis and worker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import redis

from conductor.embedded import RedisServer, WorkerProcess
from conductor.model.settings import Settings
from conductor.waiting import wait_for_result
from tests.conftest import REPO
from workers.tasks import make_stores

CYCLE = """
id: cyclic
name: Cyclic
nodes:
  - {id: a, type: delay}
  - {id: b, type: delay}
  - {id: c, type: delay}
edges:
  - {source: a, target: b}
  - {source: b, target: c}
  - {source: c, target: a}
"""


def conductor(
    *args: str, env: dict[str, str], timeout_s: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run `python -m conductor ARGS` as a user would."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CONDUCTOR_")}
    return subprocess.run(
        [sys.executable, "-m", "conductor", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=timeout_s,
        cwd=REPO,
        check=False,
    )


def test_demo_runs_on_an_embedded_redis_and_worker(tmp_path: Path) -> None:
    done = conductor(
        "run", "examples/hello.yaml", "--input", "name=Ada", "--json",
        env={"CONDUCTOR_DATA_DIR": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["success"] is True
    summary = result["data"]["summary"]["result"]
    assert summary["greeting"] == "HELLO, ADA!"
    assert summary["letters"] == len("conductorrunsblueprintsoncelery")
    workers = {step["worker"] for step in result["trace"]}
    assert all(name.startswith("worker-") and "@" in name for name in workers), workers


def test_human_output_shows_each_sink_result(tmp_path: Path) -> None:
    done = conductor("run", "examples/hello.yaml", env={"CONDUCTOR_DATA_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert "succeeded in" in done.stderr
    assert json.loads(done.stdout)["summary"]["greeting"] == "HELLO, WORLD!"


def test_validate_names_the_cycle_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "cyclic.yaml"
    path.write_text(CYCLE)
    done = conductor("validate", str(path), env={})
    assert done.returncode == 2
    assert "cycle a -> b -> c -> a" in done.stderr
    assert "CIRCULAR_DEPENDENCY" in done.stderr


def test_validate_lists_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "id: bad\nname: Bad\nnodes:\n  - {id: a, type: nope}\n  - {id: a, type: delay, parameters: {ms: -1}}\n"
        "edges: [{source: a, target: ghost}]\n"
    )
    done = conductor("validate", str(path), env={})
    assert done.returncode == 2
    for expected in ("nodes[0].type", "nodes[1].id", "nodes[1].parameters.ms", "edges[0].target"):
        assert expected in done.stderr


def test_validate_accepts_the_demo() -> None:
    done = conductor("validate", "examples/hello.yaml", env={})
    assert done.returncode == 0, done.stderr


def test_invalid_blueprint_is_rejected_before_anything_is_queued(
    tmp_path: Path, redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    path = tmp_path / "cyclic.yaml"
    path.write_text(CYCLE)
    before = set(redis_client.keys("*"))
    done = conductor("run", str(path), env={"CONDUCTOR_REDIS_URL": redis_server.url})
    assert done.returncode == 2
    assert "cycle a -> b -> c -> a" in done.stderr
    assert set(redis_client.keys("*")) == before


def test_failed_execution_exits_1_with_the_error(
    tmp_path: Path, redis_server: RedisServer, worker: WorkerProcess, worker_env: dict[str, str]
) -> None:
    path = tmp_path / "fails.yaml"
    path.write_text(
        "id: f\nname: F\nnodes:\n  - {id: boom, type: transform, parameters: {transformFunction: \"x => { throw new Error('bad row') }\"}}\n"
    )
    done = conductor(
        "run", str(path), "--json", env={"CONDUCTOR_REDIS_URL": redis_server.url, **worker_env}
    )
    assert done.returncode == 1, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "failed"
    assert result["error"]["nodeId"] == "boom"
    assert "bad row" in result["error"]["message"]


def test_detach_prints_the_id_and_the_worker_finishes_it(
    redis_server: RedisServer,
    redis_client: redis.Redis,
    worker: WorkerProcess,
    worker_env: dict[str, str],
    settings: Settings,
) -> None:
    env = {"CONDUCTOR_REDIS_URL": redis_server.url, **worker_env}
    done = conductor("run", "examples/hello.yaml", "--detach", "--json", env=env)
    assert done.returncode == 0, done.stderr
    submitted = json.loads(done.stdout)
    assert submitted["status"] == "queued"
    result = wait_for_result(redis_client, make_stores(settings), submitted["id"], timeout_s=30)
    assert result["success"] is True


def test_bad_input_flag_is_a_usage_error() -> None:
    done = conductor("run", "examples/hello.yaml", "--input", "novalue", env={})
    assert done.returncode == 2
    assert "KEY=VALUE" in done.stderr


def test_history_shows_an_embedded_run_afterwards(tmp_path: Path) -> None:
    env = {"CONDUCTOR_DATA_DIR": str(tmp_path)}
    done = conductor("run", "examples/hello.yaml", "--json", env=env)
    assert done.returncode == 0, done.stderr
    execution_id = json.loads(done.stdout)["id"]

    listing = json.loads(conductor("history", "list", "--json", env=env).stdout)
    assert [(e["id"], e["status"]) for e in listing["items"]] == [(execution_id, "succeeded")]

    shown = conductor("history", "show", execution_id, env=env)
    assert shown.returncode == 0, shown.stderr
    assert "status succeeded" in shown.stdout
    for node in ("greet", "shout", "words", "letters", "summary"):
        assert any(
            line.startswith(node) and "succeeded" in line for line in shown.stdout.splitlines()
        )
    detail = json.loads(conductor("history", "show", execution_id, "--json", env=env).stdout)
    assert detail["result"]["data"]["summary"]["result"]["greeting"] == "HELLO, WORLD!"
    assert len(detail["nodes"]) == 5

    events = conductor("history", "events", execution_id, "--json", env=env).stdout.splitlines()
    assert [json.loads(line)["seq"] for line in events] == list(range(1, len(events) + 1))
    assert json.loads(events[-1])["type"] == "execution.succeeded"

    pruned = conductor("history", "prune", "--older-than", "0s", env=env)
    assert "pruned 1 execution(s)" in pruned.stdout
    assert json.loads(conductor("history", "list", "--json", env=env).stdout)["items"] == []


def test_history_show_of_an_unknown_id_says_so(tmp_path: Path) -> None:
    done = conductor("history", "show", "nope", env={"CONDUCTOR_DATA_DIR": str(tmp_path)})
    assert done.returncode == 1
    assert "no execution 'nope'" in done.stderr


def test_prune_needs_a_readable_age(tmp_path: Path) -> None:
    done = conductor(
        "history", "prune", "--older-than", "soon", env={"CONDUCTOR_DATA_DIR": str(tmp_path)}
    )
    assert done.returncode == 2
    assert "30d" in done.stderr
