"""Redis behind Sentinels: the primary is killed mid-run, a replica takes over, and every
accepted execution still ends final, each node succeeds once, and history equals the events."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import httpx
import pytest
import redis

from conductor.compiler import compile_plan
from conductor.embedded import ApiProcess, RedisServer
from conductor.model.loader import load_blueprint_text
from storage import keys
from storage.recorder_stream import RecorderStream
from storage.redis_state import RedisStateStore
from storage.scripts import REPLICA_WAIT_MS
from tests.e2e.fault_stack import assert_sound, chain, delay, wait_until
from tests.e2e.sentinel_stack import SentinelStack, sentinel_stack
from tests.e2e.test_api_streams import view_seqs

pytestmark = [pytest.mark.serial, pytest.mark.timeout(120)]  # a failover timeline: alone


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[SentinelStack]:
    """A primary, a replica, three Sentinels, a recorder and a worker."""
    with sentinel_stack(tmp_path) as found:
        yield found


def test_a_primary_killed_mid_run_fails_over_and_loses_nothing(stack: SentinelStack) -> None:
    group = stack.sentinels
    api = ApiProcess(stack.env).start()  # its clients follow the primary too
    try:
        blueprint = chain(*[(f"n{i}", delay(300)) for i in range(5)])
        ids = [stack.submit(blueprint) for _ in range(6)]
        started = threading.Semaphore(0)
        with ThreadPoolExecutor(1) as pool:  # a live viewer of the last one, across the kill
            viewing = pool.submit(view_seqs, api.url, ids[-1], started)
            assert started.acquire(timeout=60)
            stack.wait_event(ids[0], "node.succeeded", "n0")
            killed = time.time()
            group.primary.kill()
            promoted = group.wait_promoted()
            ids += [stack.submit(blueprint) for _ in range(2)]  # accepted on the new primary
            kinds, seqs = viewing.result(timeout=90)
        assert kinds[-1] == "execution.succeeded" and seqs == list(range(1, len(seqs) + 1))
        with httpx.Client(base_url=api.url, timeout=30) as http:

            def shown(execution_id: str) -> bool:
                return bool(
                    http.get(f"/v1/executions/{execution_id}").json()["status"] == "succeeded"
                )

            for execution_id in ids:
                wait_until(partial(shown, execution_id), f"the API to show {execution_id}", 60)
    finally:
        api.stop()
    assert_sound(stack, ids, timeout_s=60)
    events = [event for execution_id in ids for event in stack.events(execution_id)]
    results = [stack.wait_final(execution_id) for execution_id in ids]
    assert [r["status"] for r in results] == ["succeeded"] * len(ids), results
    first_after = min(e.ts for e in events if e.type == "node.succeeded" and e.ts > killed)
    all_final = max(e.ts for e in events if e.type == "execution.succeeded")
    print(
        f"\nfailover timeline: primary killed -> new primary {promoted - killed:.2f} s -> "
        f"first node succeeded {first_after - killed:.2f} s -> "
        f"all {len(ids)} final {all_final - killed:.2f} s"
    )


def test_creations_and_recorded_events_are_held_by_a_replica(tmp_path: Path) -> None:
    """Behind Sentinels an execution is created, and the recorder reads new events, only once
    a replica holds them: a failover cannot lose an accepted execution or take back recorded
    history. A stopped replica delays both by the wait, then they go on (a warning says so)."""
    primary = RedisServer(tmp_path / "primary").start()
    replica = RedisServer(tmp_path / "replica", replica_of=primary.port).start()
    client, copy = (redis.Redis(port=server.port) for server in (primary, replica))
    try:
        wait_until(lambda: copy.info("replication")["master_link_status"] == "up", "the copy")
        state = RedisStateStore(client, replicas=1)
        stream = RecorderStream(client, replicas=1, wait_ms=600)
        stream.ensure_group()
        plan = compile_plan(load_blueprint_text(chain(("a", delay(0)))), "held-1", {})
        state.create(plan)
        assert copy.exists(keys.plan("held-1"))  # the creation, copied before it returned
        assert len(stream.read_new("r", 10, None)) == 1  # its execution.queued
        assert copy.xinfo_groups(keys.EVENTS_STREAM)[0]["pending"] == 1  # the read, copied
        assert replica.process is not None
        replica.process.send_signal(signal.SIGSTOP)
        try:
            started = time.monotonic()
            state.create(plan.model_copy(update={"execution_id": "held-2"}))
            assert time.monotonic() - started >= REPLICA_WAIT_MS / 1000
            started = time.monotonic()
            assert len(stream.read_new("r", 10, None)) == 1
            assert time.monotonic() - started >= 0.6
        finally:
            replica.process.send_signal(signal.SIGCONT)
    finally:
        client.close()
        copy.close()
        replica.stop()
        primary.stop()
