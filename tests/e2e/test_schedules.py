"""Schedules on Celery beat: two `conductor beat` processes, a real worker and recorder on a
private Redis; a 1-second schedule makes exactly one execution per tick (counted from Redis
and the history store, never from the clock), pause stops it, rm removes it."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from conductor.embedded import ApiProcess, RedisServer, ServiceProcess
from storage.blueprints import open_blueprint_store
from storage.history import ExecutionRecord
from storage.schedules import RedisSchedules
from tests.e2e.fault_stack import Stack, wait_until

pytestmark = pytest.mark.e2e

BLUEPRINT_ID = "scheduled-greeting"
BLUEPRINT: dict[str, Any] = {
    "id": BLUEPRINT_ID,
    "name": "Scheduled greeting",
    "variables": {"who": {"type": "string", "defaultValue": "nobody"}},
    "nodes": [
        {
            "id": "greet",
            "type": "edit-fields",
            "parameters": {"values": {"message": "Hello, {{$vars.who}}!"}},
        }
    ],
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A private Redis, recorder and worker; the Blueprint stored in their data dir."""
    base = tmp_path_factory.mktemp("schedules")
    (base / "data" / "files").mkdir(parents=True)
    server = RedisServer(base / "redis").start()
    stack = Stack(server, base / "data", f"sqlite:///{base / 'history.sqlite3'}")
    open_blueprint_store(stack.settings.blueprints_dir).create(BLUEPRINT)
    stack.start_recorder()
    stack.start_worker("scheduled", concurrency=2)
    try:
        yield stack
    finally:
        stack.stop_all()
        server.stop()


@pytest.fixture
def schedules(stack: Stack) -> Iterator[RedisSchedules]:
    store = RedisSchedules.connect(stack.redis_server.url)
    yield store
    store.close()


def conductor(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "conductor", *args],
        env={**os.environ, **stack.env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def listed(stack: Stack) -> Any:
    done = conductor(stack, "schedule", "list", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def executions_of(stack: Stack, name: str) -> list[ExecutionRecord]:
    """Every recorded execution a schedule started (history has its inputs)."""
    history = stack.history()
    try:
        page = history.list_executions(blueprint_id=BLUEPRINT_ID, limit=1000)
        records = [history.execution(item.id) for item in page.items]
    finally:
        history.close()
    return [r for r in records if r is not None and r.inputs.get("schedule") == name]


def test_two_beats_fire_each_tick_once_pause_stops_rm_removes(
    stack: Stack, schedules: RedisSchedules
) -> None:
    added = conductor(
        stack, "schedule", "add", "every-second", "--blueprint", BLUEPRINT_ID,
        "--every", "1s", "--inputs", '{"who": "beat"}',
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    beats = [ServiceProcess(["beat"], stack.env).start()]
    try:
        wait_until(lambda: schedules.get("every-second").fires >= 3, "3 ticks", 60)
        first = schedules.leader()
        beats.append(ServiceProcess(["beat"], stack.env).start())
        wait_until(lambda: len(schedules.last_polls()) == 2, "the second beat", 60)
        wait_until(lambda: schedules.get("every-second").fires >= 5, "5 ticks", 60)
        assert schedules.leader() == first  # the second one stands by
        beats[0].kill()  # the leader dies: the other takes over within the lock's TTL
        seen = schedules.get("every-second").fires
        wait_until(lambda: schedules.get("every-second").fires >= seen + 3, "3 more ticks", 60)
        assert schedules.leader() not in {None, first}

        paused = conductor(stack, "schedule", "pause", "every-second")
        assert paused.returncode == 0, paused.stderr
        paused_at = time.time()
        # The surviving beat has looked at the schedules for 3 s since the pause.
        wait_until(lambda: max(schedules.last_polls().values()) > paused_at + 3, "beat passes", 30)
        fired = schedules.fired("every-second")
        assert all(tick <= paused_at for tick, _ in fired), fired

        assert [(s["name"], s["paused"], s["fires"]) for s in listed(stack)] == [
            ("every-second", True, len(fired))
        ]
    finally:
        for beat in beats:
            beat.stop()

    ticks = [tick for tick, _ in fired]
    assert {beat for _, beat in fired} == set(schedules.last_polls())  # both fired
    assert len(ticks) == len(set(ticks)) >= 8
    assert ticks == list(range(ticks[0], ticks[0] + len(ticks))), fired
    # Exactly one execution per tick, each recording its schedule and tick.
    records = wait_until(
        lambda: (
            (found := executions_of(stack, "every-second")) and len(found) >= len(ticks) and found
        ),
        "every fired tick recorded",
        60,
    )
    per_tick = Counter(record.inputs["tick"] for record in records)
    assert len(records) == len(ticks), per_tick
    assert set(per_tick.values()) == {1}
    assert {int(dt.datetime.fromisoformat(tick).timestamp()) for tick in per_tick} == set(ticks)
    assert all(record.inputs["who"] == "beat" for record in records)

    removed = conductor(stack, "schedule", "rm", "every-second")
    assert removed.returncode == 0, removed.stderr
    assert listed(stack) == []
    again = conductor(stack, "schedule", "rm", "every-second")
    assert again.returncode == 1
    assert "no schedule 'every-second'" in again.stderr


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--every", "1s", "--cron", "* * * * *"], "--every"),
        ([], "--every"),
        (["--cron", "61 * * * *"], "--cron"),
        (["--cron", "0 0 31 2 *"], "--cron"),  # no such date: it would never fire
        (["--cron", "0 9 * * mon", "--timezone", "Mars/Olympus"], "--timezone"),
        (["--every", "soon"], "--every"),
        (["--every", "1m", "--inputs", "[1]"], "--inputs"),
    ],
)
def test_bad_input_names_the_option(
    stack: Stack, schedules: RedisSchedules, args: list[str], field: str
) -> None:
    done = conductor(stack, "schedule", "add", "bad", "--blueprint", BLUEPRINT_ID, *args)
    assert done.returncode == 2, done.stderr
    assert f"error: {field}:" in done.stderr
    assert "Traceback" not in done.stderr
    with pytest.raises(LookupError):
        schedules.get("bad")


def test_an_unknown_blueprint_is_refused(stack: Stack) -> None:
    done = conductor(stack, "schedule", "add", "x", "--blueprint", "no-such", "--every", "5m")
    assert done.returncode == 2
    assert "error: --blueprint: no stored Blueprint 'no-such'" in done.stderr


@pytest.fixture(scope="module")
def api(stack: Stack) -> Iterator[ApiProcess]:
    process = ApiProcess({**stack.env, "CONDUCTOR_API_TOKEN": "s3cret"}).start()
    yield process
    process.stop()


def test_the_api_and_client_manage_schedules(api: ApiProcess) -> None:
    from conductor.client import ConductorClient  # noqa: PLC0415

    with ConductorClient(api.url, token="s3cret") as client:
        created = client.add_schedule(
            "nightly", BLUEPRINT_ID, cron="30 2 * * *", timezone="Europe/Berlin",
            inputs={"who": "night"},
        )  # fmt: skip
        assert created["cron"] == "30 2 * * *"
        assert created["next_tick"] is not None
        assert [s["name"] for s in client.schedules()] == ["nightly"]
        assert client.pause_schedule("nightly")["paused"] is True
        assert client.resume_schedule("nightly")["paused"] is False
        assert client.schedule("nightly")["timezone"] == "Europe/Berlin"
        client.remove_schedule("nightly")
        assert client.schedules() == []


def test_the_api_refuses_bad_schedules_with_the_field(api: ApiProcess) -> None:
    import httpx  # noqa: PLC0415

    headers = {"authorization": "Bearer s3cret"}
    with httpx.Client(base_url=api.url, headers=headers) as http:
        assert http.get("/v1/schedules", headers={"authorization": ""}).status_code == 401
        answer = http.post(
            "/v1/schedules",
            json={"name": "x", "blueprint_id": "no-such", "every": "1s", "cron": "* * * * *"},
        )
        assert answer.status_code == 422
        paths = {error["path"] for error in answer.json()["errors"]}
        assert paths == {"every", "blueprint_id"}
        assert http.get("/v1/schedules/x").status_code == 404
        assert http.delete("/v1/schedules/x").status_code == 404
        assert http.post("/v1/schedules/x/pause").status_code == 404


def test_a_second_schedule_of_the_same_name_conflicts(api: ApiProcess) -> None:
    import httpx  # noqa: PLC0415

    body: dict[str, Any] = {"name": "twice", "blueprint_id": BLUEPRINT_ID, "every": "1h"}
    with httpx.Client(base_url=api.url, headers={"authorization": "Bearer s3cret"}) as http:
        assert http.post("/v1/schedules", json=body).status_code == 201
        assert http.post("/v1/schedules", json=body).status_code == 409
        assert http.delete("/v1/schedules/twice").status_code == 204
