"""The example plugin package, pip-installed, runs end to end on its own worker."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conductor.embedded import RedisServer, WorkerProcess
from tests.conftest import REPO
from tests.e2e.test_cli import conductor

PLUGIN = REPO / "examples" / "conductor-example-plugin"


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`pip install` of the example plugin into a folder of its own."""
    target = tmp_path_factory.mktemp("site")
    source = tmp_path_factory.mktemp("src") / PLUGIN.name  # pip builds in the source folder
    shutil.copytree(PLUGIN, source)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(source)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    assert (target / "conductor_example_plugin" / "nodes.py").exists()
    return target


@pytest.fixture(scope="module")
def plugin_stack(
    plugin_site: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """A Redis and a worker that has the plugin installed; yields the users' environment."""
    env = {
        "PYTHONPATH": str(plugin_site),
        "CONDUCTOR_DATA_DIR": str(tmp_path_factory.mktemp("plugin-data")),
    }
    with RedisServer() as server, WorkerProcess(server.url, env=env, name="plugin@%h"):
        yield {**env, "CONDUCTOR_REDIS_URL": server.url}


def test_example_plugin_runs_end_to_end(plugin_stack: dict[str, str]) -> None:
    done = conductor("run", "examples/plugin-demo.yaml", "--json", env=plugin_stack)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["data"]["stats"]["result"] == {
        "words": 5,
        "top": [{"word": "hello", "count": 1}, {"word": "world", "count": 1}],
    }
    slug = next(step for step in result["trace"] if step["nodeId"] == "slug")
    assert slug["worker"].startswith("plugin@")


def test_catalogue_shows_the_plugin_types(plugin_stack: dict[str, str]) -> None:
    listing = conductor("nodes", env=plugin_stack)
    assert listing.returncode == 0, listing.stderr
    assert "text-slug" in listing.stdout and "word-stats" in listing.stdout
    shown = conductor("nodes", "text-slug", "--json", env=plugin_stack)
    schema = json.loads(shown.stdout)["parameters"]
    assert {"text", "separator", "maxLength", "enabled", "timeout", "retries"} <= set(
        schema["properties"]
    )


def test_without_the_plugin_the_blueprint_is_rejected_naming_the_type() -> None:
    done = conductor("validate", "examples/plugin-demo.yaml", env={})
    assert done.returncode == 2
    assert "nodes[0].type: unknown node type 'text-slug'" in done.stderr
