"""Replay through real workers: after Redis has forgotten the execution, from a middle node
whose upstream must not run again, and `history diff` between an execution and its replay."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from click.testing import CliRunner, Result

from conductor.cli.main import main
from conductor.client import ConductorClient
from conductor.client.errors import ConflictError, NotFoundError
from conductor.embedded import ApiProcess, RedisServer, WorkerProcess
from conductor.model.loader import load_blueprint_text
from conductor.model.settings import Settings
from conductor.recorder import Recorder
from conductor.services import Services
from conductor.waiting import wait_for_result
from storage import keys
from storage.events import Event, EventType
from tests.e2e.fault_stack import Hits
from tests.e2e.test_cli import conductor

pytestmark = pytest.mark.timeout(120)

CHAIN = """
id: replay-chain
name: Replay chain
variables:
  word: {type: string, defaultValue: one}
nodes:
  - id: fetch
    type: http-request
    parameters: {url: "URL/count", retries: 0}
  - id: middle
    type: edit-fields
    parameters: {values: {word: "{{$vars.word}}"}, keepOnlySet: true}
  - id: last
    type: transform
    parameters: {transformFunction: "item => item.word.toUpperCase()"}
edges:
  - {source: fetch, target: middle}
  - {source: middle, target: last}
"""


@pytest.fixture
def services(settings: Settings, worker: WorkerProcess) -> Iterator[Services]:
    """Services on the session's Redis and history store (the worker runs the nodes)."""
    opened = Services.from_settings(settings)
    yield opened
    opened.close()


def _run(services: Services, text: str, inputs: dict[str, Any] | None = None) -> str:
    """Run to its end and record it in history; return the execution id."""
    plan = services.dispatcher.submit(load_blueprint_text(text), inputs or {})
    events = services.backend.event_source()
    result = wait_for_result(events, services.stores, plan.execution_id, timeout_s=60)
    assert result["success"], result
    _record(services)
    return plan.execution_id


def _record(services: Services) -> None:
    Recorder.from_services(services, consumer="replay-tests").drain()


def cli(*args: str, env: dict[str, str]) -> Result:
    """A `conductor` command in this process (quicker than a new interpreter per call)."""
    return CliRunner().invoke(main, list(args), env=env)


def _forget(client: redis.Redis, execution_id: str, digest: str | None) -> None:
    """What Redis's expiry does: every key of the execution, and its archived Blueprint."""
    doomed = list(client.scan_iter(match=f"conductor:exec:{{{execution_id}}}:*"))
    if digest:
        doomed.append(keys.blueprint_archive(digest).encode())
    assert doomed
    client.delete(*doomed)
    client.zrem(keys.LIVE_EXECUTIONS, execution_id)


def test_replay_after_redis_forgot_the_execution(
    *,
    services: Services,
    redis_server: RedisServer,
    redis_client: redis.Redis,
    worker_env: dict[str, str],
    hits: Hits,
    api: ApiProcess,
) -> None:
    original = _run(services, CHAIN.replace("URL", hits.url))
    record = services.history.execution(original)
    assert record is not None and record.blueprint_hash
    assert set(services.history.node_outputs(original)) == {"fetch", "middle", "last"}
    _forget(redis_client, original, record.blueprint_hash)
    assert services.stores.state.snapshot(original, []).execution is None

    env = {"CONDUCTOR_REDIS_URL": redis_server.url, **worker_env}
    done = conductor("replay", original, "--json", env=env)

    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["success"] is True
    assert result["data"]["last"]["result"] == "ONE"
    assert hits.counts["/count"] == 2  # a whole replay runs every node again
    _record(services)
    replayed = services.history.execution(result["id"])
    assert replayed is not None
    assert (replayed.replay_of, replayed.blueprint_hash) == (original, record.blueprint_hash)
    shown = cli("history", "show", result["id"], env=env)
    assert f"replay of {original}" in shown.stdout
    detail = json.loads(cli("history", "show", result["id"], "--json", env=env).stdout)
    assert detail["replay_of"] == original
    _forget(redis_client, result["id"], None)
    with ConductorClient(api.url) as client:  # from the history store now
        assert client.get(result["id"]).replay_of == original
        detached = cli("replay", result["id"], "--detach", "--json", env=env)
        assert detached.exit_code == 0, detached.output
        again = json.loads(detached.stdout)
        assert client.wait(again["id"], timeout_s=60).status == "succeeded"
        assert client.get(again["id"]).replay_of == result["id"]  # a replay of a replay


def test_an_execution_history_holds_no_blueprint_of_is_not_replayable(
    services: Services, api: ApiProcess, worker_env: dict[str, str]
) -> None:
    execution_id = f"old-{uuid.uuid4()}"  # recorded before replay existed: no blueprint_hash
    services.history.record(
        [
            Event(id=f"{execution_id}-1", execution_id=execution_id, seq=1,
                  type=EventType.EXECUTION_QUEUED, ts=time.time(),
                  data={"blueprint_id": "bp", "blueprint_name": "BP", "inputs": {}, "nodes": 1}),
            Event(id=f"{execution_id}-2", execution_id=execution_id, seq=2,
                  type=EventType.EXECUTION_SUCCEEDED, ts=time.time(),
                  data={"status": "succeeded", "error": None, "duration_ms": 1, "result": {},
                        "cancelled": []}),
        ]
    )  # fmt: skip
    with ConductorClient(api.url) as client, pytest.raises(ConflictError, match="Blueprint"):
        client.replay(execution_id)
    env = {"CONDUCTOR_REDIS_URL": api.env["CONDUCTOR_REDIS_URL"], **worker_env}
    refused = cli("replay", execution_id, env=env)
    assert refused.exit_code == 2
    assert "does not hold the Blueprint" in refused.stderr
    assert cli("replay", execution_id, "--inputs", "[1]", env=env).exit_code == 2


def test_replay_on_the_embedded_stack(tmp_path: Path) -> None:
    """Without CONDUCTOR_REDIS_URL, as `conductor run` does: a private Redis and worker."""
    env = {"CONDUCTOR_DATA_DIR": str(tmp_path)}
    ran = conductor("run", "examples/hello.yaml", "--json", env=env)
    assert ran.returncode == 0, ran.stderr
    original = json.loads(ran.stdout)["id"]

    done = conductor("replay", original, "--from", "shout", "--json", env=env)

    assert done.returncode == 0, done.stderr
    replayed = json.loads(done.stdout)
    assert replayed["data"]["summary"]["result"]["greeting"] == "HELLO, WORLD!"
    shown = json.loads(conductor("history", "show", replayed["id"], "--json", env=env).stdout)
    assert shown["replay_of"] == original
    events = conductor("history", "events", replayed["id"], "--json", env=env).stdout
    cached = {json.loads(line)["node_id"] for line in events.splitlines()
              if json.loads(line)["type"] == "node.cached"}  # fmt: skip
    assert cached == {"greet", "words", "letters"}


def test_replay_from_the_middle_node_keeps_the_upstream_output(
    services: Services, api: ApiProcess, worker_env: dict[str, str], hits: Hits
) -> None:
    original = _run(services, CHAIN.replace("URL", hits.url))
    assert hits.counts["/count"] == 1

    with ConductorClient(api.url) as client:
        accepted = client.replay(original, from_node="middle", inputs={"word": "two"})
        assert accepted.status == "queued"
        result = client.wait(accepted.id, timeout_s=60)
        view = client.get(accepted.id)
        events = list(client.events(accepted.id))

    assert result.status == "succeeded"
    assert result.data["last"]["result"] == "TWO"
    assert hits.counts["/count"] == 1  # fetch did not run again: its recorded output was used
    assert view.replay_of == original
    by_node = {(event.node_id, event.type) for event in events}
    assert ("fetch", EventType.NODE_CACHED) in by_node
    assert ("fetch", EventType.NODE_STARTED) not in by_node
    assert ("middle", EventType.NODE_SUCCEEDED) in by_node
    assert ("last", EventType.NODE_SUCCEEDED) in by_node

    _record(services)
    runs = {run.node_id: run.status.value for run in services.history.node_runs(accepted.id)}
    assert runs == {"fetch": "succeeded", "middle": "succeeded", "last": "succeeded"}

    env = {"CONDUCTOR_REDIS_URL": api.env["CONDUCTOR_REDIS_URL"], **worker_env}
    done = cli("history", "diff", original, accepted.id, "--json", env=env)
    assert done.exit_code == 0, done.output
    diff = json.loads(done.stdout)
    changes = {node["node_id"]: node["change"] for node in diff["nodes"]}
    assert changes == {"fetch": "same", "middle": "changed", "last": "changed"}
    middle = next(node for node in diff["nodes"] if node["node_id"] == "middle")
    assert "result.word" in middle["paths"]
    assert diff["b"]["replay_of"] == original
    text = cli("history", "diff", original, accepted.id, env=env).stdout
    assert 'result.word: "one" -> "two"' in text
    with ConductorClient(api.url) as client:
        assert client.diff(original, accepted.id).model_dump(mode="json") == diff


def test_replay_refusals_name_what_is_wrong(
    services: Services, api: ApiProcess, worker_env: dict[str, str], hits: Hits
) -> None:
    original = _run(services, CHAIN.replace("URL", hits.url))
    slow = services.dispatcher.submit(
        load_blueprint_text(
            "id: slow\nname: Slow\nnodes:\n  - {id: wait, type: delay, parameters: {ms: 20000}}"
        )
    )
    deadline = time.monotonic() + 30
    while services.stores.state.snapshot(slow.execution_id, []).nodes.get("wait") is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    _record(services)
    with ConductorClient(api.url) as client:
        with pytest.raises(NotFoundError, match="nope"):
            client.replay("nope")
        with pytest.raises(ConflictError, match="only a finished one"):
            client.replay(slow.execution_id)
        client.cancel(slow.execution_id)
    answer = httpx.post(f"{api.url}/v1/executions/{original}/replay", json={"from_node": "zz"})
    assert answer.status_code == 400
    problem = answer.json()
    assert problem["errors"][0]["path"] == "from_node"
    assert "'zz'" in problem["detail"]

    env = {"CONDUCTOR_REDIS_URL": api.env["CONDUCTOR_REDIS_URL"], **worker_env}
    unknown = cli("replay", "nope", env=env)
    assert unknown.exit_code == 2
    assert "no execution 'nope'" in unknown.stderr
    bad_node = cli("replay", original, "--from", "zz", env=env)
    assert bad_node.exit_code == 2
    assert "--from" in bad_node.stderr
    assert "'zz'" in bad_node.stderr
    assert cli("history", "diff", original, "nope", env=env).exit_code == 2
    unreachable = cli(
        "replay",
        original,
        env={**env, "CONDUCTOR_HISTORY_URL": "postgresql://conductor@127.0.0.1:1/none"},
    )
    assert unreachable.exit_code == 3, unreachable.output
    assert "history store" in unreachable.stderr
