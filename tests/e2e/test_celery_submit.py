"""Services already on Celery submit with send_task("conductor.submit"), importing no Conductor."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conductor.client import ConductorClient
from conductor.embedded import ApiProcess, RedisServer, WorkerProcess

# The whole of another service's side: plain Celery, nothing of ours.
SCRIPT = """\
import json
import sys

from celery import Celery

URL = sys.argv[1]
app = Celery(broker=URL, backend=URL)
r = app.send_task("conductor.submit", kwargs=json.loads(sys.argv[2]))
try:
    answer = {"id": r.get(timeout=30)}
except Exception as exc:
    answer = {"error": type(exc).__name__, "message": str(exc)}
ours = {"conductor", "nodes", "storage", "workers"}
answer["imported"] = sorted(m for m in sys.modules if m.split(".")[0] in ours)
print(json.dumps(answer))
"""

OURS = frozenset({"conductor", "nodes", "storage", "workers"})

GREETER = {
    "id": "celery-greeter",
    "name": "Greeter for Celery services",
    "variables": {"who": {"type": "string", "defaultValue": "nobody"}},
    "nodes": [
        {
            "id": "greet",
            "type": "edit-fields",
            "parameters": {"values": {"text": "Hello, {{$vars.who}}"}, "keepOnlySet": True},
        }
    ],
}

SendTask = Callable[[dict[str, Any]], dict[str, Any]]


def _imported_modules(importtime_log: str) -> set[str]:
    """Module names from `-X importtime` lines: `import time: self | cumulative | name`."""
    names = set()
    for line in importtime_log.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            names.add(line.rsplit("|", 1)[1].strip())
    return names


@pytest.fixture
def send_task(redis_server: RedisServer, worker: WorkerProcess, tmp_path: Path) -> SendTask:
    """Run SCRIPT in its own process with `-X importtime`; return what it printed."""
    script = tmp_path / "celery_service.py"
    script.write_text(SCRIPT)

    def send(kwargs: dict[str, Any]) -> dict[str, Any]:
        done = subprocess.run(
            [sys.executable, "-X", "importtime", str(script), redis_server.url, json.dumps(kwargs)],
            capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        assert answer.pop("imported") == []
        imported = _imported_modules(done.stderr)
        assert "celery" in imported  # the log is the one we think it is
        assert {name for name in imported if name.split(".")[0] in OURS} == set()
        return answer

    return send


def test_send_task_submits_an_inline_blueprint(send_task: SendTask, api: ApiProcess) -> None:
    answer = send_task({"blueprint": GREETER, "inputs": {"who": "Celery"}})
    with ConductorClient(api.url) as client:
        result = client.wait(answer["id"], timeout_s=30)
    assert result.success, result.error
    assert result.id == answer["id"]
    assert result.data == {
        "greet": {"result": {"text": "Hello, Celery"}, "data": {"text": "Hello, Celery"}}
    }


def test_send_task_submits_a_stored_blueprint_by_id(send_task: SendTask, api: ApiProcess) -> None:
    blueprint_id = f"celery-stored-{uuid.uuid4().hex[:8]}"
    with ConductorClient(api.url) as client:
        stored = client.create_blueprint({**GREETER, "id": blueprint_id, "version": "3.1.0"})
        answer = send_task({"blueprint_id": blueprint_id, "inputs": {"who": "stored"}})
        result = client.wait(answer["id"], timeout_s=30)
        execution = client.get(answer["id"])
        client.delete_blueprint(blueprint_id)
    assert stored.revision == 1
    assert result.success, result.error
    assert result.data["greet"]["result"] == {"text": "Hello, stored"}
    assert execution.blueprint_id == blueprint_id
    assert execution.blueprint_version == "3.1.0+r1"


def test_an_invalid_blueprint_fails_the_task_with_the_validation_message(
    send_task: SendTask,
) -> None:
    broken = {
        **GREETER,
        "nodes": [
            {"id": "a", "type": "no-such-type"},
            {"id": "b", "type": "delay", "parameters": {"ms": "soon"}},
        ],
    }
    answer = send_task({"blueprint": broken})
    assert answer["error"] == "InvalidBlueprint"
    assert "nodes[0].type: unknown node type 'no-such-type'" in answer["message"]
    assert "nodes[1].parameters.ms:" in answer["message"]
    assert "[INVALID_PARAMETERS]" in answer["message"]

    missing = send_task({"blueprint_id": "no-such-stored-blueprint"})
    assert missing["error"] == "BlueprintNotFound"
    assert "'no-such-stored-blueprint' not found" in missing["message"]


def test_the_same_idempotency_key_gives_the_same_execution(
    send_task: SendTask, api: ApiProcess
) -> None:
    key = f"celery-service-order-{uuid.uuid4()}"
    kwargs = {"blueprint": GREETER, "inputs": {"who": "once"}, "idempotency_key": key}
    first, again = send_task(kwargs), send_task(kwargs)
    assert first["id"] == again["id"]
    without_key = [send_task({"blueprint": GREETER})["id"] for _ in range(2)]
    assert len({*without_key, first["id"]}) == 3  # each task message is its own submission
    with ConductorClient(api.url) as client:
        assert client.wait(first["id"], timeout_s=30).success
        for execution_id in without_key:
            assert client.wait(execution_id, timeout_s=30).success


def test_inputs_nested_too_deep_fail_the_task_naming_inputs(send_task: SendTask) -> None:
    deep: Any = "bottom"
    for _ in range(150):
        deep = [deep]
    answer = send_task({"blueprint": GREETER, "inputs": {"who": deep}})
    assert answer["error"] == "InvalidBlueprint"
    assert "inputs: nesting is deeper than 100 levels" in answer["message"]
