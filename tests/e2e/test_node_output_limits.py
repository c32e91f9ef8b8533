"""Output limits on a real worker (issue 15, item 7): an output over CONDUCTOR_MAX_OUTPUT_MB
fails its node with MEMORY_LIMIT_EXCEEDED before any blob is written, and templates stop
rendering once past it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from conductor.dispatch import Dispatcher
from conductor.embedded import RedisServer, WorkerProcess
from conductor.model.loader import load_blueprint_text
from conductor.model.settings import Settings
from conductor.waiting import wait_for_result
from nodes.registry import default_registry
from tests.e2e.conftest import RunBlueprint
from workers.app import create_app
from workers.tasks import make_stores

Run = Callable[..., dict[str, Any]]


def _edit_fields(copies: int) -> str:
    values = "\n".join(f'        f{i}: "{{{{$vars.big}}}}"' for i in range(copies))
    return f"""
id: big-fields
name: Big fields
variables:
  big: {{type: string, defaultValue: ""}}
nodes:
  - id: copy
    type: edit-fields
    parameters:
      keepOnlySet: true
      values:
{values}
"""


def _files(folder: Path) -> set[Path]:
    return set(folder.rglob("*")) if folder.exists() else set()


def test_two_hundred_copies_of_a_megabyte_fail_before_any_blob(
    run_blueprint: RunBlueprint, settings: Settings
) -> None:
    blobs = _files(settings.blob_dir)
    started = time.monotonic()
    result = run_blueprint(_edit_fields(200), {"big": "x" * 1_000_000}, timeout_s=60)
    assert result["status"] == "failed", result
    error = result["error"]
    assert error["code"] == "MEMORY_LIMIT_EXCEEDED", error
    assert "64 MiB" in error["message"] and "CONDUCTOR_MAX_OUTPUT_MB" in error["message"]
    assert _files(settings.blob_dir) == blobs  # nothing written
    print(f"refused in {time.monotonic() - started:.2f} s")


@pytest.fixture(scope="module")
def small_limit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Run]]:
    """A private Redis and a worker whose output limit is 2 MiB."""
    base = tmp_path_factory.mktemp("output-limit")
    env = {"CONDUCTOR_DATA_DIR": str(base), "CONDUCTOR_MAX_OUTPUT_MB": "2"}
    with RedisServer() as server, WorkerProcess(server.url, concurrency=1, env=env):
        settings = Settings.from_env({**env, "CONDUCTOR_REDIS_URL": server.url})
        stores = make_stores(settings)
        dispatcher = Dispatcher(create_app(settings), stores, default_registry())
        client = redis.Redis.from_url(server.url)

        def run(text: str, inputs: dict[str, Any] | None = None) -> dict[str, Any]:
            plan = dispatcher.submit(load_blueprint_text(text), inputs or {})
            return wait_for_result(client, stores, plan.execution_id, 60)

        yield settings, run
        client.close()


def _transform(chars: int) -> str:
    return f"""
id: big-transform
name: Big transform
nodes:
  - id: grow
    type: transform
    parameters: {{code: "return 'y'.repeat({chars});"}}
"""


def test_the_limit_is_configurable_and_names_its_variable(
    small_limit: tuple[Settings, Run],
) -> None:
    settings, run = small_limit
    blobs = _files(settings.blob_dir)
    failed = run(_transform(3 * 1024 * 1024))
    assert failed["status"] == "failed", failed
    assert failed["error"]["code"] == "MEMORY_LIMIT_EXCEEDED"
    assert "2 MiB" in failed["error"]["message"], failed["error"]
    assert "CONDUCTOR_MAX_OUTPUT_MB" in failed["error"]["message"]
    assert _files(settings.blob_dir) == blobs
    # Under the limit (output and its `data` copy, 0.8 MiB in all), it is stored as a blob.
    passed = run(_transform(400 * 1024))
    assert passed["status"] == "succeeded", passed["error"]
    assert len(passed["data"]["grow"]["result"]) == 400 * 1024


def test_templates_stop_rendering_at_the_limit(small_limit: tuple[Settings, Run]) -> None:
    _, run = small_limit
    text = "\n".join(f'        f{i}: "<{{{{$vars.big}}}}>"' for i in range(200))
    blueprint = _edit_fields(0).replace("      values:\n", f"      values:\n{text}")
    result = run(blueprint, {"big": "z" * 100_000})
    assert result["status"] == "failed", result
    assert result["error"]["code"] == "MEMORY_LIMIT_EXCEEDED", result["error"]
    assert "edit-fields' output" in result["error"]["message"]
