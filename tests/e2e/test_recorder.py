"""The recorder: killed and restarted, or across a Redis restart, it loses and doubles nothing."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis

from conductor.dispatch import Dispatcher
from conductor.embedded import RedisServer, WorkerProcess
from conductor.model.loader import load_blueprint_text
from conductor.model.settings import Settings
from conductor.recorder import Recorder
from conductor.waiting import wait_for_result
from nodes.registry import default_registry
from storage import keys
from storage.events import Event, EventType
from storage.history import HistoryStore, open_history
from storage.state import ExecutionStatus
from workers.app import create_app
from workers.tasks import make_stores

LINEAR = """
id: steps
name: Steps
nodes:
  - {id: a, type: delay, parameters: {ms: 150}}
  - {id: b, type: delay, parameters: {ms: 150}}
  - {id: c, type: delay, parameters: {ms: 150}}
edges: [{source: a, target: b}, {source: b, target: c}]
"""
EVENTS_PER_RUN = 2 + 3 * 2 + 1  # queued, started, started/succeeded per node, succeeded


def start_recorder(redis_url: str, history_url: str, name: str) -> subprocess.Popen[bytes]:
    """`conductor recorder` as its own process, consumer `name`."""
    env = {**os.environ, "CONDUCTOR_REDIS_URL": redis_url, "CONDUCTOR_HISTORY_URL": history_url}
    return subprocess.Popen(
        [sys.executable, "-m", "conductor", "recorder", "--name", name],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def consumer_info(client: redis.Redis, name: str) -> dict[str, Any] | None:
    """XINFO CONSUMERS of the recorder group for consumer `name` (None: it has not read)."""
    try:
        consumers = client.xinfo_consumers(keys.EVENTS_STREAM, keys.RECORDER_GROUP)
    except redis.ResponseError:  # no stream or no group yet
        return None
    found = [c for c in consumers if c["name"] in (name, name.encode())]
    return found[0] if found else None


def pending(client: redis.Redis, name: str) -> int:
    """Entries consumer `name` has read and not acknowledged (XPENDING)."""
    info = consumer_info(client, name)
    return 0 if info is None else int(info["pending"])


@contextmanager
def history_write_lock(history_url: str) -> Iterator[None]:
    """Hold the SQLite history's write lock: a recorder reading a batch blocks before its
    commit, so the batch stays read and unacknowledged for as long as this is held."""
    connection = sqlite3.connect(history_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        yield
        connection.execute("ROLLBACK")
    finally:
        connection.close()


def wait_until(condition: Callable[[], bool], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.1)


def fully_recorded(history: HistoryStore, ids: list[str], per_run: int) -> bool:
    """Every execution is final in history with all its events, each seq once."""
    for execution_id in ids:
        record = history.execution(execution_id)
        if record is None or not record.status.is_terminal:
            return False
        seqs = [event.seq for event in history.events(execution_id)]
        if seqs != list(range(1, per_run + 1)):
            return False
    return True


@pytest.fixture
def history_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'history.sqlite3'}"


@pytest.fixture
def submit(settings: Settings, worker: WorkerProcess) -> Callable[[int], list[str]]:
    """Submit N executions of LINEAR; returns their ids."""
    dispatcher = Dispatcher(create_app(settings), make_stores(settings), default_registry())
    blueprint = load_blueprint_text(LINEAR)
    return lambda count: [dispatcher.submit(blueprint).execution_id for _ in range(count)]


def test_recorder_killed_mid_run_and_restarted_loses_and_doubles_nothing(
    redis_server: RedisServer,
    settings: Settings,
    submit: Callable[[int], list[str]],
    history_url: str,
) -> None:
    client = redis.Redis.from_url(redis_server.url)
    name = f"killed-{uuid.uuid4().hex[:8]}"  # its own consumer: pending counts are its own
    first = start_recorder(redis_server.url, history_url, name)
    second: subprocess.Popen[bytes] | None = None
    try:
        wait_until(lambda: consumer_info(client, name) is not None)  # group made, reading
        with history_write_lock(history_url):
            ids = submit(20)
            wait_until(lambda: pending(client, name) > 0, 15)  # read, stuck before its commit
            first.send_signal(signal.SIGKILL)
            first.wait()
        left = pending(client, name)
        assert left > 0
        stores = make_stores(settings)
        # events keep coming while no recorder runs: wait for one execution's whole run
        assert wait_for_result(client, stores, ids[0], 60)["status"] == "succeeded"
        second = start_recorder(redis_server.url, history_url, name)
        for execution_id in ids:
            assert wait_for_result(client, stores, execution_id, 60)["status"] == "succeeded"
        history = open_history(history_url)
        wait_until(lambda: fully_recorded(history, ids, EVENTS_PER_RUN))
        wait_until(lambda: pending(client, name) == 0)  # the killed one's batch taken back
        for execution_id in ids:
            runs = history.node_runs(execution_id)
            assert [(r.node_id, r.status.value, r.attempts) for r in runs] == [
                ("a", "succeeded", 1), ("b", "succeeded", 1), ("c", "succeeded", 1)
            ]  # fmt: skip
        history.close()
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait()
        client.close()


def test_entries_another_consumer_left_unacknowledged_are_claimed_once_stale(
    persistent_redis: RedisServer, history_url: str
) -> None:
    client = redis.Redis.from_url(persistent_redis.url)
    history = open_history(history_url)
    try:
        Recorder(client, history, consumer="dead").ensure_group()
        for seq in range(1, 11):
            _emit(client, "exec-claim", seq)
        # A recorder on another host read these and died before acknowledging them.
        client.xreadgroup(keys.RECORDER_GROUP, "dead", {keys.EVENTS_STREAM: ">"}, count=100)
        assert pending(client, "dead") == 10

        patient = Recorder(client, history, consumer="alive", claim_idle_ms=60_000)
        assert patient.recover() == 0  # not stale yet: the other consumer may still be alive
        assert pending(client, "dead") == 10 and history.events("exec-claim") == []

        idle_ms = 200
        wait_until(lambda: int(consumer_info(client, "dead")["idle"]) > idle_ms)  # type: ignore[index]
        claimer = Recorder(client, history, consumer="alive", claim_idle_ms=idle_ms)
        assert claimer.recover() == 10
        assert [event.seq for event in history.events("exec-claim")] == list(range(1, 11))
        assert pending(client, "dead") == 0 and pending(client, "alive") == 0
        assert client.xlen(keys.EVENTS_STREAM) == 0  # recorded, then deleted from the stream
    finally:
        history.close()
        client.close()


def test_a_hundred_concurrent_executions_are_all_recorded(
    redis_server: RedisServer, settings: Settings, history_url: str, worker: WorkerProcess
) -> None:
    recorder = start_recorder(redis_server.url, history_url, f"many-{uuid.uuid4().hex[:8]}")
    try:
        dispatcher = Dispatcher(create_app(settings), make_stores(settings), default_registry())
        quick = load_blueprint_text(LINEAR.replace("ms: 150", "ms: 0"))
        ids = [dispatcher.submit(quick).execution_id for _ in range(100)]
        history = open_history(history_url)
        wait_until(lambda: fully_recorded(history, ids, EVENTS_PER_RUN), timeout_s=90)
        assert {history.execution(i).status for i in ids} == {ExecutionStatus.SUCCEEDED}  # type: ignore[union-attr]
        history.close()
    finally:
        recorder.terminate()
        recorder.wait()


@pytest.fixture
def persistent_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "aof", appendonly=True)
    (tmp_path / "aof").mkdir()
    with server:
        yield server


def _emit(client: redis.Redis, execution_id: str, seq: int) -> None:
    kind = EventType.EXECUTION_QUEUED if seq == 1 else EventType.NODE_PROGRESS
    data = (
        {
            "blueprint_id": "b",
            "blueprint_name": "B",
            "blueprint_version": None,
            "inputs": {},
            "nodes": 1,
        }
        if seq == 1
        else {"progress": seq / 100, "message": ""}
    )
    event = Event(
        id=str(uuid.uuid4()), execution_id=execution_id, seq=seq, type=kind,
        node_id=None if seq == 1 else "n", ts=time.time(), data=data,
    )  # fmt: skip
    client.xadd(keys.EVENTS_STREAM, {"event": event.model_dump_json()})


def test_recorder_rides_out_a_redis_restart(
    persistent_redis: RedisServer, history_url: str
) -> None:
    history = open_history(history_url)
    stop = threading.Event()
    recorder = Recorder(redis.Redis.from_url(persistent_redis.url), history, consumer="r1")
    thread = threading.Thread(target=recorder.run, args=(stop,), kwargs={"block_ms": 100})
    thread.start()
    try:
        client = redis.Redis.from_url(persistent_redis.url)
        for seq in range(1, 31):
            _emit(client, "exec-1", seq)
        time.sleep(0.5)
        persistent_redis.restart()
        client = redis.Redis.from_url(persistent_redis.url)
        for seq in range(31, 61):
            _emit(client, "exec-1", seq)
        wait_until(lambda: len(history.events("exec-1")) == 60)
        assert [event.seq for event in history.events("exec-1")] == list(range(1, 61))
    finally:
        stop.set()
        thread.join()
        history.close()
