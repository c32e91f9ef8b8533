"""Step-through debugging through the real API, worker, client and CLI: breakpoints pause
before a node, its resolved inputs can be read, `step` runs the next node(s) and pauses
again, `resume` runs to the end; inside groups and loop bodies too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conductor.embedded import ApiProcess
from conductor.model.settings import Settings
from conductor.services import Services

pytestmark = pytest.mark.timeout(120)
REPO = Path(__file__).resolve().parents[2]

CHAIN = {
    "id": "debug-chain",
    "name": "Debug chain",
    "nodes": [
        {"id": "a", "type": "transform", "parameters": {"transformFunction": "x => 20"}},
        {"id": "b", "type": "transform", "parameters": {"transformFunction": "x => x + 1"}},
        {"id": "c", "type": "transform", "parameters": {"transformFunction": "x => x * 2"}},
    ],
    "edges": [{"source": "a", "target": "b"}, {"source": "b", "target": "c"}],
}
LOOP_AND_GROUP = {
    "id": "debug-nested",
    "name": "Debug nested",
    "nodes": [
        {"id": "each", "type": "loop", "parameters": {"items": [1, 2, 3]}},
        {"id": "double", "type": "transform", "parameters": {"transformFunction": "x => x * 2"}},
        {
            "id": "g",
            "type": "group",
            "nodes": [
                {"id": "inner", "type": "transform", "parameters": {"transformFunction": "x => x"}}
            ],
        },
    ],
    "edges": [
        {"source": "each", "target": "double", "sourceHandle": "item"},
        {"source": "each", "target": "g"},
    ],
}


@pytest.fixture
def http(api: ApiProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.url, timeout=httpx.Timeout(10, read=20)) as client:
        yield client


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    found = Services.from_settings(settings)
    yield found
    found.close()


def submit(http: httpx.Client, blueprint: dict[str, Any], breakpoints: list[str]) -> str:
    response = http.post(
        "/v1/executions", json={"blueprint": blueprint, "breakpoints": breakpoints}
    )
    assert response.status_code == 202, response.text
    execution_id: str = response.json()["id"]
    return execution_id


def paused_at(services: Services, execution_id: str, count: int) -> str:
    """Until the execution has paused `count` times; the node of the last pause."""
    deadline = time.monotonic() + 30
    while True:
        meta = services.stores.state.snapshot(execution_id, []).execution
        events = services.stores.state.events(execution_id) or []
        pauses = [e.data for e in events if e.type == "execution.paused"]
        if len(pauses) >= count and meta is not None and meta.status == "paused":
            assert len(pauses) == count, pauses
            return str(pauses[-1]["breakpoint"])
        assert meta is not None and meta.status in ("queued", "running", "paused"), meta
        assert time.monotonic() < deadline, f"never paused {count} times: {pauses}"
        time.sleep(0.05)


def final(http: httpx.Client, execution_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while (view := http.get(f"/v1/executions/{execution_id}").json())["status"] not in (
        "succeeded",
        "failed",
        "cancelled",
    ):
        assert time.monotonic() < deadline, view
        time.sleep(0.05)
    return dict(view)


def test_pause_at_a_breakpoint_inspect_step_and_resume(
    http: httpx.Client, services: Services
) -> None:
    execution_id = submit(http, CHAIN, ["b"])
    assert paused_at(services, execution_id, 1) == "b"
    node = http.get(f"/v1/executions/{execution_id}/nodes/b").json()
    assert node["status"] == "pending" and node["breakpoint"] is True
    assert node["inputs"]["input"] == 20 and node["output"] is None
    waiting = http.get(f"/v1/executions/{execution_id}/nodes/c").json()
    assert waiting["inputs"] is None and waiting["waiting_for"] == ["b"]

    stepped = http.post(f"/v1/executions/{execution_id}/step")
    assert stepped.status_code == 200, stepped.text
    assert paused_at(services, execution_id, 2) == "c"  # b ran, c held by the step
    after = http.get(f"/v1/executions/{execution_id}/nodes/b").json()
    assert after["status"] == "succeeded" and after["output"]["result"] == 21
    assert http.get(f"/v1/executions/{execution_id}/nodes/c").json()["inputs"]["input"] == 21

    assert http.post(f"/v1/executions/{execution_id}/resume").status_code == 200
    result = final(http, execution_id)
    assert result["status"] == "succeeded", result
    assert result["result"]["data"]["c"]["result"] == 42
    again = http.post(f"/v1/executions/{execution_id}/step")
    assert again.status_code == 409  # only a paused execution steps


def test_breakpoints_inside_a_loop_body_hold_each_item_and_inside_a_group(
    http: httpx.Client, services: Services
) -> None:
    execution_id = submit(http, LOOP_AND_GROUP, ["each/double", "g/inner"])
    held = [paused_at(services, execution_id, 1)]
    for count in range(2, 5):
        assert http.post(f"/v1/executions/{execution_id}/resume").status_code == 200
        held.append(paused_at(services, execution_id, count))
    assert sorted(held) == ["each#0/double", "each#1/double", "each#2/double", "g/inner"]
    item = http.get(f"/v1/executions/{execution_id}/nodes/each%232/double").json()
    assert item["breakpoint"] is True and item["inputs"]["input"] == 3
    assert http.post(f"/v1/executions/{execution_id}/resume").status_code == 200
    result = final(http, execution_id)
    assert result["status"] == "succeeded", result


def test_a_breakpoint_naming_no_node_is_refused_naming_it(http: httpx.Client) -> None:
    response = http.post("/v1/executions", json={"blueprint": CHAIN, "breakpoints": ["a", "zz"]})
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert [e["path"] for e in errors] == ["breakpoints[1]"] and "zz" in errors[0]["message"]
    unknown = http.get("/v1/executions/nope/nodes/a")
    assert unknown.status_code == 404


def conductor(
    *args: str, env: dict[str, str], stdin: str = "", timeout_s: float = 60
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CONDUCTOR_")}
    return subprocess.run(
        [sys.executable, "-m", "conductor", *args],
        env={**clean, **env}, input=stdin, capture_output=True, text=True,
        timeout=timeout_s, cwd=REPO, check=False,
    )  # fmt: skip


def test_run_break_asks_what_to_do_at_each_pause(
    api_env: dict[str, str], api: ApiProcess, tmp_path: Path
) -> None:
    path = tmp_path / "chain.json"
    path.write_text(json.dumps(CHAIN))
    done = conductor(
        "run", str(path), "--break", "b", "--json", env=api_env, stdin="i a\nbogus\ns\nc\n"
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["data"]["c"]["result"] == 42
    assert "paused before b" in done.stderr and "paused before c" in done.stderr
    assert "unknown command 'bogus'" in done.stderr
    assert '"input": 20' not in done.stderr or "inputs:" in done.stderr
    assert "a [transform]: succeeded" in done.stderr  # `i a` showed node a


def test_inspect_and_step_from_the_command_line(
    api_env: dict[str, str], http: httpx.Client, services: Services
) -> None:
    execution_id = submit(http, CHAIN, ["a"])
    assert paused_at(services, execution_id, 1) == "a"
    shown = conductor("inspect", execution_id, "a", "--json", env=api_env)
    assert shown.returncode == 0, shown.stderr
    node = json.loads(shown.stdout)
    assert (node["status"], node["breakpoint"], node["inputs"]["ports"]) == ("pending", True, {})
    text = conductor("inspect", execution_id, "b", env=api_env)
    assert "b [transform]: pending" in text.stdout and "waiting for a" in text.stdout
    stepped = conductor("step", execution_id, env=api_env)
    assert stepped.returncode == 0, stepped.stderr
    assert paused_at(services, execution_id, 2) == "b"
    missing = conductor("inspect", execution_id, "nope", env=api_env)
    assert missing.returncode == 1 and "no node 'nope'" in missing.stderr
    assert conductor("resume", execution_id, env=api_env).returncode == 0
    assert final(http, execution_id)["status"] == "succeeded"


def test_quitting_the_debugger_of_an_embedded_run_cancels_it(tmp_path: Path) -> None:
    path = tmp_path / "chain.json"
    path.write_text(json.dumps(CHAIN))
    done = conductor(
        "run", str(path), "--break", "c", "--json",
        env={"CONDUCTOR_DATA_DIR": str(tmp_path)}, stdin="q\n",
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "cancelled" and result["error"]["code"] == "CANCELLED"
    assert {step["nodeId"]: step["status"] for step in result["trace"]}["b"] == "succeeded"
