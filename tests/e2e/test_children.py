"""Blueprint-as-node through real workers (docs/children.md): a `blueprint` node runs a stored
Blueprint as a child execution, parked while it runs; five levels nest on a worker of two
processes; a failed child fails its node; the parent's cancel reaches its children; references
are checked at submit."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conductor.children import children_of
from conductor.client import ConductorClient
from conductor.control import Control
from conductor.embedded import ApiProcess, WorkerProcess
from conductor.model.children import child_id
from conductor.model.loader import blueprint_from_data
from conductor.model.problems import InvalidBlueprint
from conductor.model.settings import Settings
from conductor.recorder import Recorder
from conductor.services import Services
from conductor.waiting import wait_for_result
from tests.conftest import REPO


@pytest.fixture
def services(settings: Settings, worker: WorkerProcess) -> Iterator[Services]:
    """Services on the session's Redis and data dir (its Blueprint store is the worker's)."""
    found = Services.from_settings(settings)
    yield found
    found.close()


def unique(name: str) -> str:
    """A Blueprint id no other test uses (the session shares one Blueprint store)."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


def level(blueprint_id: str, child: str | None) -> dict[str, Any]:
    """One level: `add` puts its depth on the input; with a child, `inner` runs it on that."""
    nodes: list[dict[str, Any]] = [
        {
            "id": "add",
            "type": "transform",
            "parameters": {"transformFunction": "x => ({depth: (x.depth || 0) + 1})"},
        }
    ]
    edges = []
    if child is not None:
        nodes.append({"id": "inner", "type": "blueprint", "parameters": {"blueprintId": child}})
        edges.append({"source": "add", "target": "inner", "sourceHandle": "result"})
    return {"id": blueprint_id, "name": blueprint_id, "nodes": nodes, "edges": edges}


def submit(services: Services, blueprint: dict[str, Any], inputs: dict[str, Any]) -> str:
    plan = services.dispatcher.submit(blueprint_from_data(blueprint), inputs)
    return plan.execution_id


def result_of(services: Services, execution_id: str, timeout_s: float = 60) -> dict[str, Any]:
    return wait_for_result(
        services.backend.event_source(), services.stores, execution_id, timeout_s
    )


def test_five_levels_of_stored_blueprints_run_end_to_end(services: Services) -> None:
    ids = [unique(f"level{n}") for n in range(5)]
    for n in reversed(range(5)):
        services.blueprints.create(level(ids[n], ids[n + 1] if n < 4 else None))
    top = {**level(unique("top"), ids[0]), "name": "top"}
    execution_id = submit(services, top, {"depth": 0})
    # six executions on a worker of two processes: each parked node frees its process
    result = result_of(services, execution_id, 30)
    assert result["status"] == "succeeded", result["error"]
    output, depth = result["data"]["inner"], 1
    while "inner" in output:
        depth += 1
        output = output["inner"]
    assert output["add"]["result"] == {"depth": 6}
    assert depth == 5
    child = result["data"]["inner"]["executionId"]
    assert child == child_id(execution_id, "inner")
    meta = services.stores.state.snapshot(child, []).execution
    assert meta is not None
    assert (meta.parent_id, meta.parent_node) == (execution_id, "inner")
    plan = services.stores.state.stored_plan(execution_id)
    assert plan is not None
    assert plan.plan.nodes["inner"].parameters["revision"] == 1  # the latest, pinned


def failing(blueprint_id: str) -> dict[str, Any]:
    return {
        "id": blueprint_id,
        "name": blueprint_id,
        "nodes": [
            {
                "id": "boom",
                "type": "transform",
                "parameters": {"transformFunction": "x => { throw new Error('no') }", "retries": 0},
            }
        ],
    }


def parent_of(child: str, retries: int = 0) -> dict[str, Any]:
    return {
        "id": unique("parent"),
        "name": "parent",
        "nodes": [
            {
                "id": "run",
                "type": "blueprint",
                "parameters": {"blueprintId": child, "retries": retries, "inputs": {"a": 1}},
            }
        ],
    }


def test_a_failed_child_fails_the_node_naming_it(services: Services) -> None:
    child = unique("failing")
    services.blueprints.create(failing(child))
    execution_id = submit(services, parent_of(child), {})
    result = result_of(services, execution_id)
    assert result["status"] == "failed"
    child_execution = child_id(execution_id, "run")
    assert result["error"]["nodeId"] == "run"
    assert child_execution in result["error"]["message"]
    assert "boom" in result["error"]["message"]
    child_result = result_of(services, child_execution)
    assert child_result["status"] == "failed"


def test_retry_of_the_parent_retries_the_failed_child(services: Services) -> None:
    child, flag = unique("fixable"), f"{uuid.uuid4().hex}.txt"
    reads = {
        "id": child,
        "name": child,
        "nodes": [
            {
                "id": "read",
                "type": "file-system",
                "parameters": {"operation": "read", "path": f"/{flag}", "retries": 0},
            }
        ],
    }
    services.blueprints.create(reads)
    execution_id = submit(services, parent_of(child), {})
    child_execution = child_id(execution_id, "run")
    first = result_of(services, execution_id)
    assert first["status"] == "failed"
    assert child_execution in first["error"]["message"]
    services.settings.files_root.mkdir(parents=True, exist_ok=True)
    (services.settings.files_root / flag).write_text("there now")
    assert Control(services.dispatcher).retry(execution_id).value == "done"
    result = result_of(services, execution_id)
    assert result["status"] == "succeeded", result["error"]
    assert result["data"]["run"]["read"]["result"] == "there now"
    assert result["data"]["run"]["executionId"] == child_execution  # the same child, retried
    events = services.stores.state.events(child_execution) or []
    assert any(event.data.get("retry") for event in events if event.type == "execution.resumed")


def waiting_child(blueprint_id: str) -> dict[str, Any]:
    return {
        "id": blueprint_id,
        "name": blueprint_id,
        "nodes": [{"id": "hold", "type": "wait-for-signal", "parameters": {"name": "go"}}],
    }


def wait_status(services: Services, execution_id: str, status: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        meta = services.stores.state.snapshot(execution_id, []).execution
        if meta is not None and meta.status.value == status:
            return
        assert time.monotonic() < deadline, f"{execution_id} never {status}"
        time.sleep(0.05)


def test_cancel_pause_and_resume_of_the_parent_reach_the_child(services: Services) -> None:
    child = unique("waiting")
    services.blueprints.create(waiting_child(child))
    execution_id = submit(services, parent_of(child), {})
    child_execution = child_id(execution_id, "run")
    wait_status(services, child_execution, "running")
    control = Control(services.dispatcher)
    assert control.pause(execution_id).value == "done"
    wait_status(services, child_execution, "paused")
    assert control.resume(execution_id).value == "done"
    wait_status(services, child_execution, "running")
    assert control.cancel(execution_id).value == "done"
    assert result_of(services, child_execution)["status"] == "cancelled"
    assert result_of(services, execution_id)["status"] == "cancelled"


def test_a_signal_to_the_child_finishes_the_parent(services: Services) -> None:
    child = unique("approval")
    services.blueprints.create(waiting_child(child))
    execution_id = submit(services, parent_of(child), {})
    child_execution = child_id(execution_id, "run")
    wait_status(services, child_execution, "running")
    deadline = time.monotonic() + 30
    while not services.stores.state.parked(child_execution):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    services.stores.state.signal(child_execution, "go", json.dumps({"ok": True}), max_pending=10)
    services.dispatcher.redispatch(child_execution)
    result = result_of(services, execution_id)
    assert result["status"] == "succeeded", result["error"]
    assert result["data"]["run"]["hold"]["result"] == {"ok": True}
    assert result["data"]["run"]["executionId"] == child_execution


def test_references_are_checked_at_submit(services: Services) -> None:
    a, b = unique("a"), unique("b")
    services.blueprints.create(parent_of(b) | {"id": a, "name": a})
    services.blueprints.create(parent_of(a) | {"id": b, "name": b})
    with pytest.raises(InvalidBlueprint) as cycle:
        submit(services, parent_of(a), {})
    problem = cycle.value.problems[0]
    assert problem.path == "nodes[0].parameters.blueprintId"
    assert f"{a} -> {b} -> {a}" in problem.message
    assert problem.code.value == "CIRCULAR_DEPENDENCY"
    with pytest.raises(InvalidBlueprint) as missing:
        submit(services, parent_of(unique("nowhere")), {})
    assert "no stored Blueprint" in missing.value.problems[0].message
    revision = parent_of(a)
    revision["nodes"][0]["parameters"]["revision"] = 9
    with pytest.raises(InvalidBlueprint) as no_revision:
        submit(services, revision, {})
    assert no_revision.value.problems[0].path == "nodes[0].parameters.revision"


def test_validation_errors_through_the_api_and_the_cli(
    api: ApiProcess, api_env: dict[str, str], tmp_path: Path
) -> None:
    a, b = unique("a"), unique("b")
    for source, target in ((a, b), (b, a)):
        stored = httpx.post(f"{api.url}/v1/blueprints", json=parent_of(target) | {"id": source})
        assert stored.status_code == 201, stored.text
    revision = parent_of(a)
    revision["nodes"][0]["parameters"]["revision"] = 7
    cases = {
        "missing": (parent_of(unique("absent")), "blueprintId", "no stored Blueprint"),
        "cycle": (parent_of(a), "blueprintId", f"-> {a} -> {b} -> {a}"),
        "revision": (revision, "revision", "has no revision 7"),
    }
    for name, (blueprint, field, message) in cases.items():
        response = httpx.post(f"{api.url}/v1/executions", json={"blueprint": blueprint})
        assert response.status_code == 422, (name, response.text)
        (error,) = response.json()["errors"]
        assert error["path"].endswith(f"nodes[0].parameters.{field}"), (name, error)
        assert message in error["message"], (name, error)
        checked = httpx.post(f"{api.url}/v1/blueprints/validate", json=blueprint)
        assert checked.status_code == 422, (name, checked.text)
        assert checked.json()["errors"] == [
            error | {"path": error["path"].removeprefix("blueprint.")}
        ]
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(blueprint))
        for command in (["run", str(path), "--json"], ["validate", str(path)]):
            done = subprocess.run(
                [sys.executable, "-m", "conductor", *command],
                env=api_env,
                capture_output=True,
                text=True,
                timeout=60,
                cwd=REPO,
                check=False,
            )
            assert done.returncode == 2, (name, command, done.stderr)
            assert f"nodes[0].parameters.{field}" in done.stderr and message in done.stderr
            assert "Traceback" not in done.stderr


def test_a_missing_blueprint_chosen_at_run_time_fails_the_node(services: Services) -> None:
    chooser = parent_of("{{$input.which}}")
    execution_id = submit(services, chooser, {"which": unique("gone")})
    result = result_of(services, execution_id)
    assert result["status"] == "failed"
    assert result["error"]["code"] == "VALIDATION_FAILED"
    assert "not found" in result["error"]["message"]
    broken = unique("broken")  # stored; what it references is not
    services.blueprints.create(parent_of(unique("absent")) | {"id": broken})
    execution_id = submit(services, chooser, {"which": broken})
    result = result_of(services, execution_id)
    assert result["error"]["code"] == "VALIDATION_FAILED"
    assert f"Blueprint {broken!r} cannot run as a child" in result["error"]["message"]
    assert "no stored Blueprint" in result["error"]["message"]


def test_the_node_timeout_bounds_the_wait_for_the_child(services: Services) -> None:
    child = unique("slow")
    services.blueprints.create(waiting_child(child))
    blueprint = parent_of(child)
    blueprint["nodes"][0]["parameters"]["timeout"] = 1500
    execution_id = submit(services, blueprint, {})
    result = result_of(services, execution_id)
    assert result["status"] == "failed"
    assert result["error"]["code"] == "TIMEOUT"
    assert child_id(execution_id, "run") in result["error"]["message"]
    assert result_of(services, child_id(execution_id, "run"))["status"] == "cancelled"


def test_the_api_and_history_link_parent_and_child_both_ways(
    services: Services, api: ApiProcess, api_env: dict[str, str]
) -> None:
    child = unique("leaf")
    services.blueprints.create(level(child, None))
    execution_id = submit(services, parent_of(child), {})
    assert result_of(services, execution_id)["status"] == "succeeded"
    child_execution = child_id(execution_id, "run")
    parent_view = httpx.get(f"{api.url}/v1/executions/{execution_id}").json()
    assert parent_view["parent"] is None
    assert parent_view["children"] == [
        {"id": child_execution, "node": "run", "status": "succeeded"}
    ]
    with ConductorClient(api.url) as client:
        child_view = client.get(child_execution)
    assert child_view.parent is not None
    assert (child_view.parent.id, child_view.parent.node) == (execution_id, "run")
    assert child_view.children == []
    Recorder(services.backend.recorder_stream(), services.history).drain()

    def show(*args: str) -> str:
        command = [sys.executable, "-m", "conductor", "history", "show", *args]
        done = subprocess.run(
            command, env=api_env, capture_output=True, text=True, timeout=60, cwd=REPO, check=False
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    shown = json.loads(show(child_execution, "--json"))
    assert shown["parent"] == {"id": execution_id, "node": "run", "status": "succeeded"}
    assert (shown["parent_id"], shown["parent_node"]) == (execution_id, "run")  # its columns
    assert f"child   {child_execution}  (node run, succeeded)" in show(execution_id)


def test_a_parent_that_fails_elsewhere_cancels_its_child(services: Services) -> None:
    child = unique("orphan")
    services.blueprints.create(waiting_child(child))
    blueprint = parent_of(child)
    blueprint["nodes"].append(failing("boom")["nodes"][0] | {"id": "late"})
    blueprint["nodes"][1]["parameters"]["transformFunction"] = (
        "x => { const t = Date.now() + 1500; while (Date.now() < t) {} throw new Error('no') }"
    )
    execution_id = submit(services, blueprint, {})
    result = result_of(services, execution_id)
    assert result["status"] == "failed" and result["error"]["nodeId"] == "late"
    child_result = result_of(services, child_id(execution_id, "run"))
    assert child_result["status"] == "cancelled"
    assert execution_id in child_result["error"]["message"]


def test_a_loop_body_runs_one_child_per_item(services: Services) -> None:
    child = unique("per-item")
    services.blueprints.create(level(child, None))
    body = {"id": "run", "type": "blueprint", "parameters": {"blueprintId": child}}
    blueprint = {
        "id": unique("each"),
        "name": "each",
        "nodes": [
            {
                "id": "each",
                "type": "loop",
                "parameters": {"iterateOver": "items", "concurrency": 3},
                "nodes": [body],
            }
        ],
    }
    execution_id = submit(services, blueprint, {"items": [{"depth": 1}, {"depth": 5}, {}]})
    result = result_of(services, execution_id)
    assert result["status"] == "succeeded", result["error"]
    outputs = result["data"]["each"]["result"]  # each item's `result`: its child's data
    assert [output["add"]["result"]["depth"] for output in outputs] == [2, 6, 1]
    links = children_of(services.stores.state, execution_id)
    assert [link.node for link in links] == [f"each#{n}/run" for n in range(3)]
    assert [link.execution_id for link in links] == [
        child_id(execution_id, f"each#{n}/run") for n in range(3)
    ]
