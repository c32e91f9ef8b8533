"""Retry, the reconciler's decisions, and the control commands from the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from conductor.client import ConductorClient
from conductor.control import ControlOutcome
from conductor.embedded import ApiProcess
from conductor.model.loader import load_blueprint_text
from conductor.reconciler import MAX_REDISPATCHES, Reconciler, Repair
from storage import keys
from storage.events import EventType
from storage.redis_state import RedisStateStore
from storage.state import ExecutionStatus, StateChange
from tests.e2e.fault_stack import (
    Hits,
    Stack,
    assert_sound,
    chain,
    delay,
    drop_queue,
    private_stack,
    queued,
)
from workers.finalize import finalize

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A private Redis, a recorder and one worker."""
    with private_stack(tmp_path_factory.mktemp("control"), "control") as stack:
        yield stack


def files(stack: Stack) -> str:
    return str(stack.data_dir / "files")


def read(path: str) -> str:
    return f"type: file-system, parameters: {{operation: read, path: '{path}', retries: 0}}"


def test_retry_reruns_only_the_failed_and_never_run_nodes(stack: Stack, hits: Hits) -> None:
    flag = f"flag-{time.monotonic_ns()}.txt"
    execution_id = stack.submit(
        chain(
            ("fetch", f"type: http-request, parameters: {{url: '{hits.url}/once'}}"),
            ("check", read(flag)),
            ("after", delay(0)),
        )
    )
    failed = stack.wait_final(execution_id)
    assert failed["status"] == "failed" and failed["error"]["nodeId"] == "check"

    with open(os.path.join(files(stack), flag), "w") as handle:
        handle.write("now it is there")
    assert stack.control().retry(execution_id) is ControlOutcome.DONE
    result = stack.wait_final(execution_id)
    assert result["status"] == "succeeded", result["error"]
    assert hits.counts == {"/once": 1}  # the successful node kept its output
    attempts = {step["nodeId"]: step["attempts"] for step in result["trace"]}
    assert attempts == {"fetch": 1, "check": 2, "after": 1}
    events = stack.events(execution_id)
    resumed = [e for e in events if e.type == "execution.resumed"]
    assert len(resumed) == 1 and resumed[0].data["retry"] is True
    assert [e.type for e in events].count(EventType.EXECUTION_FAILED) == 1
    assert_sound(stack, [execution_id])
    history = stack.history()
    try:
        record = history.execution(execution_id)
        assert record is not None and record.status is ExecutionStatus.SUCCEEDED
    finally:
        history.close()


LOOP = """
id: items
name: Items
nodes:
  - id: each
    type: loop
    parameters: {iterateOver: names}
    nodes:
      - {id: load, type: file-system, parameters: {operation: read, path: "PREFIX-{{$input}}.txt", retries: 0}}
      - {id: fetch, type: http-request, parameters: {url: "URL/item/{{$input}}"}}
    edges: [{source: load, target: fetch}]
  - id: verify
    type: transform
    parameters: {transformFunction: "x => { if (x === null) throw new Error('an item failed'); return 1 }"}
edges: [{source: each, target: verify}]
"""


def test_retry_reruns_only_the_failed_loop_items(stack: Stack, hits: Hits) -> None:
    prefix = f"item-{time.monotonic_ns()}"
    for name in ("a", "c"):
        with open(os.path.join(files(stack), f"{prefix}-{name}.txt"), "w") as handle:
            handle.write(name)
    text = LOOP.replace("URL", hits.url).replace("PREFIX", prefix)
    execution_id = stack.submit(text, {"names": ["a", "b", "c"]})
    failed = stack.wait_final(execution_id)
    assert failed["status"] == "failed" and failed["error"]["nodeId"] == "verify"

    with open(os.path.join(files(stack), f"{prefix}-b.txt"), "w") as handle:
        handle.write("b")
    assert stack.control().retry(execution_id) is ControlOutcome.DONE
    result = stack.wait_final(execution_id)
    assert result["status"] == "succeeded", result["error"]
    assert result["data"]["verify"]["result"] == [1, 1, 1]
    assert hits.counts == {"/item/a": 1, "/item/b": 1, "/item/c": 1}
    attempts = {step["nodeId"]: step["attempts"] for step in result["trace"]}
    assert attempts["each#1/load"] == 2 and attempts["each#0/load"] == 1
    assert_sound(stack, [execution_id])


NESTED = """
id: nested
name: Nested
nodes:
  - id: outer
    type: group
    nodes:
      - {id: fetch, type: http-request, parameters: {url: "URL/nested"}}
      - id: inner
        type: group
        nodes:
          - {id: check, type: file-system, parameters: {operation: read, path: "FLAG", retries: 0}}
    edges: [{source: fetch, target: inner}]
"""


def test_retry_reruns_a_failed_node_inside_nested_groups(stack: Stack, hits: Hits) -> None:
    flag = f"nested-{time.monotonic_ns()}.txt"
    execution_id = stack.submit(NESTED.replace("URL", hits.url).replace("FLAG", flag))
    failed = stack.wait_final(execution_id)
    assert failed["status"] == "failed"
    assert failed["error"]["nodeId"] == "outer/inner/check"
    with open(os.path.join(files(stack), flag), "w") as handle:
        handle.write("found")
    assert stack.control().retry(execution_id) is ControlOutcome.DONE
    result = stack.wait_final(execution_id)
    assert result["status"] == "succeeded", result["error"]
    assert hits.counts == {"/nested": 1}
    attempts = {step["nodeId"]: step["attempts"] for step in result["trace"]}
    assert attempts["outer/fetch"] == 1 and attempts["outer/inner/check"] == 2
    assert_sound(stack, [execution_id])


def test_retry_of_a_cancelled_execution_runs_the_rest(stack: Stack) -> None:
    execution_id = stack.submit(chain(("a", delay(0)), ("b", delay(1500)), ("c", delay(0))))
    stack.wait_event(execution_id, "node.started", "b")
    assert stack.control().cancel(execution_id) is ControlOutcome.DONE
    assert stack.wait_final(execution_id)["status"] == "cancelled"
    assert stack.control().retry(execution_id) is ControlOutcome.DONE
    result = stack.wait_final(execution_id)
    assert result["status"] == "succeeded", result["error"]
    attempts = {step["nodeId"]: step["attempts"] for step in result["trace"]}
    assert attempts == {"a": 1, "b": 2, "c": 1}
    assert_sound(stack, [execution_id])


def test_a_client_following_a_retried_execution_gets_the_new_result(stack: Stack) -> None:
    flag = f"client-{time.monotonic_ns()}.txt"
    api = ApiProcess(stack.env).start()
    try:
        with ConductorClient(api.url) as client:
            text = chain(("check", read(flag)), ("after", delay(0)))
            submitted = client.submit(load_blueprint_text(text))
            assert client.wait(submitted.id, timeout_s=30).status == "failed"
            with open(os.path.join(files(stack), flag), "w") as handle:
                handle.write("here now")
            assert client.retry(submitted.id).status == "running"
            result = client.wait(submitted.id, timeout_s=30)
            assert result.status == "succeeded", result.error
            # a stream read from the start passes the first run's end and follows the retry
            types = [event.type for event in client.events(submitted.id)]
            assert types.count(EventType.EXECUTION_FAILED) == 1
            assert types[-1] is EventType.EXECUTION_SUCCEEDED
    finally:
        api.stop()


def test_a_late_retire_leaves_a_retried_execution_its_running_ttl(stack: Stack) -> None:
    execution_id = stack.submit(chain(("a", "type: delay, queue: parked, parameters: {ms: 0}")))
    assert stack.control().cancel(execution_id) is ControlOutcome.DONE
    stores = stack.dispatcher().stores
    assert 0 < stack.client.ttl(keys.meta(execution_id)) <= stack.settings.finished_ttl_s
    assert stack.control().retry(execution_id) is ControlOutcome.DONE
    stores.retire(execution_id)  # a finalize that lost the race, arriving after the retry
    assert stack.client.ttl(keys.meta(execution_id)) > stack.settings.finished_ttl_s
    assert stack.control().cancel(execution_id) is ControlOutcome.DONE
    drop_queue(stack.client, "parked")


def test_retry_and_resume_refuse_what_their_state_does_not_allow(stack: Stack) -> None:
    execution_id = stack.submit(chain(("a", delay(0))))
    assert stack.wait_final(execution_id)["status"] == "succeeded"
    control = stack.control()
    assert control.retry(execution_id) is ControlOutcome.CONFLICT
    assert control.resume(execution_id) is ControlOutcome.CONFLICT
    assert control.cancel(execution_id) is ControlOutcome.CONFLICT
    assert control.retry("no-such-execution") is ControlOutcome.NOT_FOUND


def cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "conductor", *args],
        env={**os.environ, **stack.env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_control_from_the_command_line(stack: Stack) -> None:
    # Node a outlasts any CLI start-up, however loaded the machine (cancel stops it).
    execution_id = stack.submit(chain(("a", delay(120_000)), ("b", delay(0))))
    stack.wait_event(execution_id, "node.started", "a")
    paused = cli(stack, "pause", execution_id, "--json")
    assert paused.returncode == 0, paused.stderr
    assert json.loads(paused.stdout) == {"id": execution_id, "status": "paused"}
    assert cli(stack, "pause", execution_id).returncode == 1  # already paused: says why
    cancelled = cli(stack, "cancel", execution_id)
    assert cancelled.returncode == 0 and "cancelled" in cancelled.stdout
    assert stack.wait_final(execution_id)["status"] == "cancelled"
    retried = cli(stack, "retry", execution_id)
    assert retried.returncode == 0, retried.stderr
    stack.wait_event(execution_id, "execution.resumed")  # running again, from node a
    assert stack.control().cancel(execution_id) is ControlOutcome.DONE
    assert stack.wait_final(execution_id)["status"] == "cancelled"
    unknown = cli(stack, "resume", "no-such-execution")
    assert unknown.returncode == 1 and "unknown or expired" in unknown.stderr
    assert "Retry a failed or cancelled execution" in cli(stack, "retry", "--help").stdout


def reconciler(stack: Stack) -> Reconciler:
    dispatcher = stack.dispatcher()
    assert isinstance(dispatcher.stores.state, RedisStateStore)
    return Reconciler(dispatcher, dispatcher.stores.state, stall_s=1)


def backdate(stack: Stack, execution_id: str, by_s: float = 60) -> None:
    """Make the execution look idle for `by_s` seconds."""
    score = stack.client.zscore(keys.LIVE_EXECUTIONS, execution_id)
    assert score is not None
    stack.client.zadd(keys.LIVE_EXECUTIONS, {execution_id: score - by_s * 1000})


def test_the_reconciler_fails_an_execution_whose_messages_keep_getting_lost(
    stack: Stack,
) -> None:
    execution_id = stack.submit(chain(("a", "type: delay, queue: nowhere, parameters: {ms: 0}")))
    checker = reconciler(stack)
    for attempt in range(MAX_REDISPATCHES + 1):
        drop_queue(stack.client, "nowhere")  # nobody consumes it, and now nothing is queued either
        backdate(stack, execution_id)
        expected = Repair.REDISPATCHED if attempt < MAX_REDISPATCHES else Repair.FAILED
        assert checker.check(execution_id, _now_ms()) is expected
    assert queued(stack.client, "nowhere") == 0
    result = stack.wait_final(execution_id)
    assert result["status"] == "failed"
    assert "no progress" in result["error"]["message"]
    assert checker.check(execution_id, _now_ms()) is Repair.FORGOTTEN  # terminal: left alone
    assert stack.wait_final(execution_id)["status"] == "failed"
    drop_queue(stack.client, "nowhere")


def test_the_reconciler_waits_while_its_queue_has_a_backlog(stack: Stack) -> None:
    execution_id = stack.submit(chain(("a", "type: delay, queue: busy, parameters: {ms: 0}")))
    backdate(stack, execution_id)
    assert reconciler(stack).check(execution_id, _now_ms()) is None  # queued, not lost
    assert queued(stack.client, "busy") == 1
    assert stack.control().cancel(execution_id) is ControlOutcome.DONE
    drop_queue(stack.client, "busy")


def test_the_reconciler_counts_the_backlog_of_a_queue_its_node_type_is_routed_to(
    stack: Stack,
) -> None:
    execution_id = stack.submit(chain(("a", "type: delay, queue: routed, parameters: {ms: 0}")))
    backdate(stack, execution_id)
    # The node names no queue of its own in this check: its type's route (CONDUCTOR_QUEUE_ROUTES)
    # says where it waits.
    dispatcher = stack.dispatcher()
    stored = dispatcher.stores.state.stored_plan(execution_id)
    assert stored is not None and queued(stack.client, "routed") == 1
    unrouted = stored.plan.nodes["a"].model_copy(update={"queue": None})
    plan = stored.plan.model_copy(update={"nodes": {"a": unrouted}})
    routed = Reconciler(dispatcher, dispatcher.stores.state, stall_s=1, routes={"delay": "routed"})
    assert routed._backlog(replace(stored, plan=plan))
    assert not reconciler(stack)._backlog(replace(stored, plan=plan))  # the default queue: empty
    assert stack.control().cancel(execution_id) is ControlOutcome.DONE
    drop_queue(stack.client, "routed")


def test_the_reconciler_never_overwrites_a_final_state(stack: Stack) -> None:
    execution_id = stack.submit(chain(("a", delay(0))))
    assert stack.wait_final(execution_id)["status"] == "succeeded"
    stack.client.zadd(keys.LIVE_EXECUTIONS, {execution_id: 0})  # a stale entry
    stores = stack.dispatcher().stores
    assert reconciler(stack).check(execution_id, _now_ms()) is Repair.FORGOTTEN
    assert not finalize(execution_id, stores, ExecutionStatus.FAILED, {"code": "X"})
    assert stack.wait_final(execution_id)["status"] == "succeeded"


def test_the_reconciler_finishes_a_cancel_cut_short(stack: Stack) -> None:
    execution_id = stack.submit(chain(("a", "type: delay, queue: parked, parameters: {ms: 0}")))
    assert stack.dispatcher().stores.state.cancel(execution_id) is StateChange.DONE  # caller died
    assert stack.client.get(keys.result(execution_id)) is None
    assert reconciler(stack).check(execution_id, _now_ms()) is Repair.FINALIZED
    result = stack.wait_final(execution_id)
    assert result["status"] == "cancelled"
    drop_queue(stack.client, "parked")
    assert_sound(stack, [execution_id])


def _now_ms() -> int:
    return int(time.time() * 1000)
