"""Custom node types from the `conductor.nodes` entry-point group, on a worker of their own."""

from __future__ import annotations

import importlib
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conductor.embedded import RedisServer, WorkerProcess
from nodes.registry import default_registry
from tests.e2e.conftest import RunBlueprint

PLUGIN = """
import time
from nodes.base import Node, NodeContext, NodeParameters


class ReverseParameters(NodeParameters):
    text: str = ""


class ReverseNode(Node[ReverseParameters]):
    type_name = "test-reverse"
    description = "Reverse a text"
    parameters_model = ReverseParameters

    def run(self, params, context):
        return {"result": params.text[::-1]}


class StubbornNode(Node[NodeParameters]):
    type_name = "test-stubborn"
    description = "Ignore every soft time limit"

    def run(self, params, context):
        while True:
            try:
                time.sleep(0.1)
            except BaseException:
                pass
"""


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An installed-looking plugin distribution: a module plus dist-info with entry points."""
    root = tmp_path_factory.mktemp("plugin")
    (root / "conductor_test_plugin.py").write_text(textwrap.dedent(PLUGIN))
    info = root / "conductor_test_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: conductor-test-plugin\nVersion: 0.1\n"
    )
    (info / "entry_points.txt").write_text(
        "[conductor.nodes]\n"
        "test-reverse = conductor_test_plugin:ReverseNode\n"
        "test-stubborn = conductor_test_plugin:StubbornNode\n"
    )
    return root


@pytest.fixture
def plugin_worker(
    plugin_path: Path,
    redis_server: RedisServer,
    worker_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[WorkerProcess]:
    """A worker that has the plugin, consuming the `plugins` queue only."""
    monkeypatch.syspath_prepend(str(plugin_path))  # the submitting side validates with it too
    importlib.invalidate_caches()
    env = {**worker_env, "PYTHONPATH": str(plugin_path)}
    with WorkerProcess(redis_server.url, queues=["plugins"], env=env, name="plugins@%h") as process:
        yield process


def test_plugin_types_are_registered_from_entry_points(plugin_worker: WorkerProcess) -> None:
    assert {"test-reverse", "test-stubborn"} <= set(default_registry().names())


def test_a_plugin_node_runs_on_the_worker_that_has_it(
    plugin_worker: WorkerProcess, run_blueprint: RunBlueprint
) -> None:
    result = run_blueprint(
        """
id: plug
name: Plug
nodes:
  - {id: rev, type: test-reverse, queue: plugins, parameters: {text: "{{$input.word}}"}}
  - {id: shout, type: transform, parameters: {transformFunction: "item => item.toUpperCase()"}}
edges: [{source: rev, target: shout}]
""",
        {"word": "rotcudnoc"},
    )
    assert result["status"] == "succeeded", result["error"]
    assert result["data"]["shout"]["result"] == "CONDUCTOR"
    workers = {step["nodeId"]: step["worker"] for step in result["trace"]}
    assert workers["rev"].startswith("plugins@")
    assert workers["shout"].startswith("e2e@")


def test_a_node_that_ignores_its_soft_limit_is_killed_at_the_hard_limit(
    plugin_worker: WorkerProcess, run_blueprint: RunBlueprint
) -> None:
    started = time.monotonic()
    result = run_blueprint(
        """
id: stubborn
name: Stubborn
nodes:
  - {id: stuck, type: test-stubborn, queue: plugins, parameters: {timeout: 200, retries: 0}}
""",
        timeout_s=60,
    )
    assert result["status"] == "failed"
    assert result["error"]["code"] == "TIMEOUT"
    assert result["error"]["nodeId"] == "stuck"
    assert time.monotonic() - started < 30
