"""A Blueprint run end to end with the history on PostgreSQL, as compose deploys it: a worker, the
recorder writing to PostgreSQL, then `conductor history show/events` reading it back.

PostgreSQL comes from CONDUCTOR_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/
test), in a fresh schema dropped afterwards; without a server the test skips, or fails when
CI=true (tests/ci.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conductor.embedded import RedisServer
from tests.contract.conftest import postgres_schema_url  # noqa: F401  (the fixture)
from tests.e2e.fault_stack import Stack, assert_sound

pytestmark = pytest.mark.timeout(120)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def stack(postgres_schema_url: str, tmp_path: Path) -> Iterator[Stack]:  # noqa: F811
    """A private Redis, one worker, and the recorder writing to PostgreSQL."""
    server = RedisServer(tmp_path / "redis").start()
    (tmp_path / "data" / "files").mkdir(parents=True)
    stack = Stack(server, tmp_path / "data", postgres_schema_url)
    stack.start_recorder()
    stack.start_worker("postgres", concurrency=2)
    try:
        yield stack
    finally:
        stack.stop_all()
        server.stop()


def history_cli(stack: Stack, *args: str) -> str:
    """`conductor history ARGS` as a user runs it, on the stack's history store."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CONDUCTOR_")}
    done = subprocess.run(
        [sys.executable, "-m", "conductor", "history", *args],
        env={**clean, "CONDUCTOR_HISTORY_URL": stack.history_url},
        capture_output=True, text=True, timeout=60, cwd=REPO, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_blueprint_run_is_recorded_in_postgresql_and_read_back(stack: Stack) -> None:
    blueprint = (REPO / "examples" / "hello.yaml").read_text()
    execution_id = stack.submit(blueprint, {"name": "PostgreSQL"})
    result = stack.wait_final(execution_id)
    assert result["status"] == "succeeded", result["error"]
    assert_sound(stack, [execution_id])  # history rows equal the events, node runs match

    shown = history_cli(stack, "show", execution_id)
    assert "status succeeded" in shown
    for node in ("greet", "shout", "words", "letters", "summary"):
        assert any(line.startswith(node) and "succeeded" in line for line in shown.splitlines())
    detail = json.loads(history_cli(stack, "show", execution_id, "--json"))
    assert detail["result"]["data"] == result["data"]
    assert len(detail["nodes"]) == 5

    lines = history_cli(stack, "events", execution_id, "--json").splitlines()
    recorded = [json.loads(line) for line in lines]
    logged = stack.events(execution_id)
    assert [(e["seq"], e["type"]) for e in recorded] == [(e.seq, e.type.value) for e in logged]
    listing = json.loads(history_cli(stack, "list", "--json"))
    assert [(e["id"], e["status"]) for e in listing["items"]] == [(execution_id, "succeeded")]
