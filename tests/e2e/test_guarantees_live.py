"""The README's guarantees that need real workers: a dead worker's message returning after the
visibility timeout, a hard-limit kill inside a loop item, retry of an `allSettled` `parallel`,
the 5 s backoff cap, a Redis crash, and the Celery task id as the submission's idempotency key.

Each test waits on the event it is about (a restored message consumed, a re-dispatch, a retry
event), never on a sleep. `python -m tests.mutants` breaks each mechanism and checks these tests
notice. A private Redis with an append-only file and a recorder; workers come per test.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conductor.control import ControlOutcome
from conductor.embedded import RedisServer
from conductor.submit_task import CELERY_DEFAULT_QUEUE, SUBMIT_TASK
from storage import keys
from storage.events import EventType
from tests.e2e.fault_stack import (
    UNACKED,
    Hits,
    Stack,
    assert_sound,
    chain,
    delay,
    messages_in_flight,
    wait_consumed,
    wait_until,
)
from workers.run_node import MAX_BACKOFF_S

pytestmark = pytest.mark.timeout(180)

UNACKED_INDEX = "unacked_index"  # kombu's delivery times of the unacknowledged messages

# A node type that ignores its timeout and Celery's soft limit: only the hard limit ends it.
PLUGIN = """
import time
from nodes.base import Node, NodeParameters


class StubbornParameters(NodeParameters):
    mode: str = "hang"


class StubbornNode(Node[StubbornParameters]):
    type_name = "test-stubborn"
    description = "Ignore every soft time limit (in mode hang), or return the mode"
    parameters_model = StubbornParameters

    def run(self, params, context):
        while params.mode == "hang":
            try:
                time.sleep(0.1)
            except BaseException:
                pass
        return {"result": params.mode}
"""


def write_plugin(root: Path) -> Path:
    """An installed-looking plugin distribution under `root`: a module and its entry point."""
    (root / "conductor_guarantee_plugin.py").write_text(textwrap.dedent(PLUGIN))
    info = root / "conductor_guarantee_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: conductor-guarantee-plugin\nVersion: 0.1\n"
    )
    (info / "entry_points.txt").write_text(
        "[conductor.nodes]\ntest-stubborn = conductor_guarantee_plugin:StubbornNode\n"
    )
    return root


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Redis with an append-only file, a recorder; every process (and this one, which
    validates submissions) has the stubborn node type."""
    base = tmp_path_factory.mktemp("guarantees-live")
    plugin = str(write_plugin(tmp_path_factory.mktemp("plugin")))
    sys.path.insert(0, plugin)
    server = RedisServer(base / "redis", appendonly=True).start()
    (base / "data" / "files").mkdir(parents=True)
    path = os.pathsep.join([plugin, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    # The local HTTP server is allowed by name for an egress policy that refuses loopback.
    extra = {"PYTHONPATH": path, "CONDUCTOR_HTTP_ALLOW": "127.0.0.1"}
    stack = Stack(server, base / "data", f"sqlite:///{base / 'history.sqlite3'}", extra)
    stack.start_recorder()
    yield stack
    stack.stop_all()
    server.stop()
    sys.path.remove(plugin)


@pytest.fixture
def fresh(stack: Stack) -> Iterator[Stack]:
    """The module's stack, with this test's workers stopped afterwards."""
    yield stack
    for process in stack.workers:
        process.stop()
    stack.workers.clear()


def unacked_messages(stack: Stack) -> dict[bytes, dict[str, Any]]:
    """kombu's delivered, unacknowledged messages by delivery tag."""
    raw: dict[bytes, bytes] = stack.client.hgetall(UNACKED)  # type: ignore[assignment]
    return {tag: json.loads(value)[0] for tag, value in raw.items()}


def test_a_dead_workers_message_returning_after_the_visibility_timeout_is_ignored(
    fresh: Stack, hits: Hits
) -> None:
    doomed = fresh.start_worker("doomed-visibility", concurrency=1)
    call = f"type: http-request, parameters: {{url: '{hits.url}/slow', method: GET}}"
    execution_id = fresh.submit(chain(("call", call), ("after", delay(30_000))))
    wait_until(lambda: hits.counts["/slow"] == 1, "the first attempt's request")
    ((tag, returning),) = [
        (tag, message["headers"]["id"])
        for tag, message in unacked_messages(fresh).items()
        if message["headers"]["argsrepr"].startswith(f"('{execution_id}', 'call'")
    ]
    doomed.kill()  # its message stays unacknowledged in Redis for the visibility timeout

    fresh.start_worker("takes-over", concurrency=1)  # the reconciler, once the lease lapsed
    fresh.wait_event(execution_id, "node.succeeded", "call")
    fresh.wait_event(execution_id, "node.started", "after")
    done_by_recovery = hits.counts["/slow"]  # at least once: the first request may count too

    # The visibility timeout (2 h) passes: kombu restores the message when a worker starts.
    assert fresh.client.zscore(UNACKED_INDEX, tag) is not None
    fresh.client.zadd(UNACKED_INDEX, {tag: 1.0})  # delivered in 1970
    assert returning in messages_in_flight(fresh.client)
    fresh.start_worker("restores", concurrency=1)
    wait_consumed(fresh.client, returning)

    assert fresh.control().cancel(execution_id) is ControlOutcome.DONE
    result = fresh.wait_final(execution_id)
    assert result["status"] == "cancelled"
    assert hits.counts["/slow"] == done_by_recovery  # the returning message did no work
    types = [(e.type, e.node_id) for e in fresh.events(execution_id)]
    assert types.count((EventType.NODE_SUCCEEDED, "call")) == 1
    assert types.count((EventType.NODE_STARTED, "call")) == 2  # the dead attempt, the recovery
    assert_sound(fresh, [execution_id])


LOOP_WITH_A_STUBBORN_ITEM = """
id: hard-kill-in-loop
name: Hard kill in a loop item
nodes:
  - id: each
    type: loop
    parameters: {iterateOver: items}
    nodes:
      - {id: stuck, type: test-stubborn, parameters: {mode: "{{$input}}", timeout: 200, retries: 0}}
"""


def test_a_hard_limit_kill_inside_a_loop_item_is_left_to_the_reconciler(fresh: Stack) -> None:
    fresh.start_worker("hard-limit", concurrency=1)
    execution_id = fresh.submit(LOOP_WITH_A_STUBBORN_ITEM, {"items": ["hang", "pass"]})
    # Celery's hard limit (the timeout + 10 s) ends the item's pool process; the item's failure
    # is settled, but nothing sends the loop's collecting run: the reconciler does, on a stall.
    result = fresh.wait_final(execution_id, timeout_s=90)
    assert result["status"] == "succeeded", result["error"]
    assert fresh.client.hget(keys.meta(execution_id), "redispatched") == b"1"
    item = fresh.dispatcher().stores.state.snapshot(execution_id, []).nodes["each#0/stuck"]
    assert item.error is not None
    assert (item.error["code"], item.error["message"]) == (
        "TIMEOUT",
        "the node task was killed at its hard time limit",
    )
    loop = result["data"]["each"]
    assert loop["result"] == [None, "pass"]
    assert [(e["index"], e["error"]["code"]) for e in loop["errors"]] == [(0, "TIMEOUT")]
    assert_sound(fresh, [execution_id])


ALL_SETTLED = """
id: settled-retry
name: Retry of an allSettled parallel
nodes:
  - id: both
    type: parallel
    parameters: {strategy: allSettled}
    nodes:
      - {id: fetch, type: http-request, parameters: {url: "URL/settled"}}
      - {id: check, type: file-system, parameters: {operation: read, path: "FLAG", retries: 0}}
  - id: verify
    type: transform
    parameters:
      transformFunction: "x => { if (JSON.stringify(x).includes('rejected')) throw new Error('a child failed'); return 'all fulfilled' }"
edges: [{source: both, target: verify}]
"""


def test_retry_reruns_an_all_settled_parallel(fresh: Stack, hits: Hits) -> None:
    fresh.start_worker("settled-retry", concurrency=2)
    flag = f"settled-{time.monotonic_ns()}.txt"
    text = ALL_SETTLED.replace("URL", hits.url).replace("FLAG", flag)
    execution_id = fresh.submit(text)
    failed = fresh.wait_final(execution_id)
    assert failed["status"] == "failed" and failed["error"]["nodeId"] == "verify"
    assert "a child failed" in failed["error"]["message"]

    (fresh.data_dir / "files" / flag).write_text("there now")
    assert fresh.control().retry(execution_id) is ControlOutcome.DONE
    result = fresh.wait_final(execution_id)
    assert result["status"] == "succeeded", result["error"]
    assert result["data"]["verify"]["result"] == ["all fulfilled"] * 2  # one per child
    both = json.loads(fresh.client.hget(keys.outputs(execution_id), "both") or "null")
    outcomes = {entry["id"]: entry["status"] for entry in both["result"]}
    assert outcomes == {"fetch": "fulfilled", "check": "fulfilled"}
    assert hits.counts == {"/settled": 1}  # the fulfilled child kept its output
    attempts = {step["nodeId"]: step["attempts"] for step in result["trace"]}
    assert (attempts["both/check"], attempts["both/fetch"]) == (2, 1)
    assert attempts["both"] == 2  # the parallel collected again
    assert_sound(fresh, [execution_id])


def test_retries_wait_at_most_five_seconds(fresh: Stack) -> None:
    # A stall (no node running or queued) longer than the longest backoff: the reconciler must
    # not send the node again while its retry waits out the countdown in the worker.
    fresh.start_worker("backoff", concurrency=1, CONDUCTOR_STALL_S="30")
    timing_out = "type: delay, parameters: {ms: 60000, timeout: 50, retries: 4}"
    execution_id = fresh.submit(chain(("late", timing_out)))
    result = fresh.wait_final(execution_id, timeout_s=90)
    assert result["status"] == "failed" and result["error"]["code"] == "TIMEOUT"

    events = [e for e in fresh.events(execution_id) if e.node_id == "late"]
    retrying = [e for e in events if e.type == EventType.NODE_RETRYING]
    delays_s = [float(e.data["retry_in_s"]) for e in retrying]
    print("retry delays (s):", [round(d, 2) for d in delays_s])
    assert len(delays_s) == 4
    assert all(d <= MAX_BACKOFF_S for d in delays_s), delays_s
    assert delays_s[-1] >= 4 * 0.8  # the fourth is past 4 s: capped, not cut short
    # Each retry's next attempt starts no sooner than its delay (the events' own clocks).
    starts = [e for e in events if e.type == EventType.NODE_STARTED]
    assert len(starts) == 5
    for retry, start in zip(retrying, starts[1:], strict=True):
        assert start.ts - retry.ts >= float(retry.data["retry_in_s"]) * 0.9, (retry, start)


def test_a_redis_crash_mid_run_leaves_every_accepted_execution_final(fresh: Stack) -> None:
    """SIGKILL, not SIGTERM. With `appendonly yes`, Redis writes each command to its
    append-only file before it replies, so a crash of the Redis process loses nothing it
    acknowledged, with `appendfsync` `everysec` or `always`; `everysec` differs on a crash of
    the machine, which can lose the last second (what a lost second drops, the reconciler
    re-dispatches as a stall). Nodes running at the crash lose their worker's connection and are
    taken over once their lease lapses."""
    assert fresh.client.config_set("appendfsync", "always")
    worker = fresh.start_worker("redis-crash", concurrency=2)
    blueprint = chain(("a", delay(300)), ("b", delay(3000)), ("c", delay(300)))
    ids = [fresh.submit(blueprint) for _ in range(3)]
    fresh.wait_event(ids[0], "node.started", "b")
    fresh.redis_server.kill()
    # Down longer than a client's own short retries (about a second), so every process sees it:
    # Redis comes back once the worker failed to reconnect twice (its retries are 2 s apart).
    log = worker.log_path
    assert log is not None
    wait_until(lambda: "Trying again in" in log.read_text(errors="replace"), "a failed reconnect")
    wait_until(lambda: log.read_text(errors="replace").count("Trying again in") >= 2, "another")
    fresh.redis_server.start()
    fresh.client.connection_pool.disconnect()
    assert_sound(fresh, ids, timeout_s=60)
    for execution_id in ids:
        result = fresh.wait_final(execution_id)
        assert result["status"] == "succeeded", result["error"]


def test_a_redelivered_submit_message_gives_the_same_execution(fresh: Stack) -> None:
    fresh.start_worker("submits", concurrency=1)
    app = fresh.dispatcher().app
    blueprint = {
        "id": "redelivered-submit",
        "name": "Redelivered submit",
        "nodes": [{"id": "n", "type": "delay", "parameters": {"ms": 0}}],
    }
    task_id = f"submit-{time.monotonic_ns()}"

    result_key = f"celery-task-meta-{task_id}"  # where the result backend keeps its result

    def deliver() -> str:
        """One delivery of the same message: same task id, no idempotency key of its own."""
        app.send_task(
            SUBMIT_TASK, kwargs={"blueprint": blueprint}, task_id=task_id,
            queue=CELERY_DEFAULT_QUEUE,
        )  # fmt: skip
        raw = wait_until(lambda: fresh.client.get(result_key), "the submit task's result", 60)
        fresh.client.delete(result_key)  # the next delivery's result is its own
        meta = json.loads(raw)
        assert meta["status"] == "SUCCESS", meta
        execution_id: str = meta["result"]
        return execution_id

    first, again = deliver(), deliver()
    assert first == again
    result = fresh.wait_final(first)
    assert result["status"] == "succeeded", result["error"]
    assert_sound(fresh, [first])
