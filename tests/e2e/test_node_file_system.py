"""`file-system` on the real worker: Atomiton's hello-world flow writes its file unchanged."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from conductor.dispatch import Dispatcher
from conductor.embedded import WorkerProcess
from conductor.model.blueprint import Blueprint
from conductor.model.loader import load_blueprint_file
from conductor.model.settings import Settings
from conductor.waiting import wait_for_result
from nodes.registry import default_registry
from tests.conftest import ATOMITON_FLOWS
from tests.e2e.conftest import RunBlueprint
from workers.app import create_app
from workers.tasks import make_stores

HELLO_WORLD = ATOMITON_FLOWS / "hello-world.flow.yaml"
SubmitBlueprint = Callable[[Blueprint], dict[str, Any]]


@pytest.fixture
def submit_blueprint(settings: Settings, worker: WorkerProcess) -> Iterator[SubmitBlueprint]:
    """Submit a Blueprint model to the real worker and return the result object."""
    stores = make_stores(settings)
    dispatcher = Dispatcher(create_app(settings), stores, default_registry())
    client = redis.Redis.from_url(str(settings.redis_url))

    def submit(blueprint: Blueprint) -> dict[str, Any]:
        plan = dispatcher.submit(blueprint, {})
        return wait_for_result(client, stores, plan.execution_id, 30)

    yield submit
    client.close()


def test_atomiton_hello_world_flow_writes_its_message(
    submit_blueprint: SubmitBlueprint, data_dir: Path
) -> None:
    result = submit_blueprint(load_blueprint_file(HELLO_WORLD))
    assert result["status"] == "succeeded", result["error"]
    assert result["data"] == {
        "write-to-file": {
            "result": "File written: .tmp/hello-world-output.txt",
            "success": True,
            "path": ".tmp/hello-world-output.txt",
            "size": result["data"]["write-to-file"]["size"],
        }
    }
    written = (data_dir / "files" / ".tmp" / "hello-world-output.txt").read_text(encoding="utf-8")
    assert re.fullmatch(
        r"Hello World from Atomiton!\n\n"
        r"This is a simple example showing how Flow nodes work together\.\n\n"
        r"Created by: Atomiton Flow System\n"
        r"Generated at: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z",
        written,
    ), written
    assert result["data"]["write-to-file"]["size"] == len(written.encode())


def test_write_read_and_list_chain(run_blueprint: RunBlueprint, data_dir: Path) -> None:
    result = run_blueprint(
        """
id: files-chain
name: Files chain
nodes:
  - id: write
    type: file-system
    parameters: {operation: write, path: e2e-chain/data.json, content: "{{$input}}", createDirectories: true, overwrite: true}
  - {id: read, type: file-system, parameters: {path: e2e-chain/data.json}}
  - {id: list, type: file-system, parameters: {operation: list, filePath: e2e-chain, pattern: "*.{json,txt}"}}
edges:
  - {source: write, target: read}
  - {source: read, target: list}
""",
        {"n": 7, "tags": ["a"]},
    )
    assert result["status"] == "succeeded", result["error"]
    assert result["data"]["list"]["result"] == ["e2e-chain/data.json"]
    written = (data_dir / "files" / "e2e-chain" / "data.json").read_text()
    assert written == '{\n  "n": 7,\n  "tags": [\n    "a"\n  ]\n}'


def test_a_path_out_of_the_root_fails_the_execution(run_blueprint: RunBlueprint) -> None:
    result = run_blueprint(
        """
id: escape
name: Escape
nodes:
  - {id: peek, type: file-system, parameters: {path: ../../etc/passwd}}
"""
    )
    assert result["status"] == "failed"
    assert result["error"]["nodeId"] == "peek"
    assert result["error"]["code"] == "VALIDATION_FAILED"
    assert "outside the files root" in result["error"]["message"]


def test_a_hard_link_out_of_the_root_is_not_read(
    run_blueprint: RunBlueprint, data_dir: Path
) -> None:
    secret = data_dir / "hard-link-secret.txt"  # beside the files root, not in it
    secret.write_text("not for nodes")
    (data_dir / "files" / "hard").mkdir(parents=True, exist_ok=True)
    link = data_dir / "files" / "hard" / "link.txt"
    link.unlink(missing_ok=True)
    link.hardlink_to(secret)
    result = run_blueprint(
        """
id: hard-link
name: Hard link
nodes:
  - {id: peek, type: file-system, parameters: {path: hard/link.txt}}
"""
    )
    assert result["status"] == "failed", result
    assert result["error"]["code"] == "VALIDATION_FAILED"
    assert "has 2 hard links" in result["error"]["message"]
    assert "not for nodes" not in str(result)


def test_a_path_too_deep_fails_with_its_limit(run_blueprint: RunBlueprint) -> None:
    deep = "/".join(["d"] * 2000)
    result = run_blueprint(
        f"""
id: deep-path
name: Deep path
nodes:
  - {{id: dig, type: file-system, parameters: {{operation: create, recursive: true, path: {deep}}}}}
"""
    )
    assert result["status"] == "failed", result
    assert result["error"]["code"] == "INVALID_PARAMETERS", result["error"]
    assert "at most 128 are allowed" in result["error"]["message"]
