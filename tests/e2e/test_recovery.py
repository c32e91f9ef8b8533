"""One execution never blocks recovery (issue 15 item 1): an output no reader could parse fails
its node, an execution whose state is broken is skipped by the reconciler (and failed after a
few passes) while the others are repaired in the same pass, and cancel works on a stuck one.
A private Redis and real worker processes; the reconciler passes are run by the test."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from conductor.compiler import compile_plan
from conductor.control import ControlOutcome
from conductor.embedded import RedisServer
from conductor.model.loader import load_blueprint_text
from conductor.reconciler import MAX_CHECK_FAILURES, Reconciler, Repair
from storage import keys
from storage.state import NodeStatus
from tests.e2e.fault_stack import Stack, chain, delay, wait_until

pytestmark = pytest.mark.timeout(120)

NO_RECONCILER = {"CONDUCTOR_RECONCILE_EVERY_S": "3600"}  # only the test's passes run


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("recovery")
    server = RedisServer(base / "redis").start()
    (base / "data").mkdir()
    stack = Stack(server, base / "data", f"sqlite:///{base / 'history.sqlite3'}")
    yield stack
    stack.stop_all()
    server.stop()


@pytest.fixture
def fresh(stack: Stack) -> Iterator[Stack]:
    yield stack
    for process in stack.workers:
        process.stop()
    stack.workers.clear()


def nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


def backdate(stack: Stack, execution_id: str, by_s: float) -> None:
    score = stack.client.zscore(keys.LIVE_EXECUTIONS, execution_id)
    assert score is not None, "the execution is not in the live index"
    stack.client.zadd(keys.LIVE_EXECUTIONS, {execution_id: score - by_s * 1000})


def test_an_output_too_deep_to_store_fails_its_node_cleanly(fresh: Stack) -> None:
    fresh.start_worker("deep", concurrency=1, **NO_RECONCILER)
    # Inputs may nest 100 levels; each edit-fields below wraps its input one level deeper,
    # until an output passes what can be stored.
    wraps = "\n".join(
        f"  - {{id: e{i}, type: edit-fields, parameters: {{values: {{v: '{{{{$input}}}}'}}, "
        "keepOnlySet: true}}"
        for i in range(1, 41)
    )
    edges = ", ".join(f"{{source: e{i}, target: e{i + 1}}}" for i in range(40))
    blueprint = (
        "id: deep\nname: Deep\nvariables: {deep: {type: array}}\nnodes:\n"
        "  - {id: e0, type: edit-fields, parameters: {values: {v: '{{$vars.deep}}'}, "
        "keepOnlySet: true}}\n"
        f"{wraps}\n  - {{id: after, type: delay, parameters: {{ms: 0}}}}\n"
        f"edges: [{edges}, {{source: e40, target: after}}]\n"
    )
    execution_id = fresh.submit(blueprint, {"deep": nested(95)})
    result = fresh.wait_final(execution_id)
    assert result["status"] == "failed"
    assert result["error"]["code"] == "SERIALIZATION_FAILED", result["error"]
    assert str(result["error"]["nodeId"]).startswith("e")
    assert fresh.events(execution_id)[-1].type.value == "execution.failed"
    assert fresh.client.zscore(keys.LIVE_EXECUTIONS, execution_id) is None


def test_a_poisoned_execution_does_not_stop_a_pass_from_recovering_another(fresh: Stack) -> None:
    doomed = fresh.start_worker("doomed", concurrency=1, **NO_RECONCILER)
    orphan = fresh.submit(chain(("a", delay(4000)), ("b", delay(0))))
    fresh.wait_event(orphan, "node.started", "a")
    doomed.kill()  # SIGKILL: node a keeps its lease until it lapses
    state = fresh.dispatcher().stores.state
    wait_until(
        lambda: state.snapshot(orphan, []).nodes["a"].lease_lapsed(state.clock_ms()),
        "the killed worker's lease to lapse",
    )
    poisoned = poison(fresh)
    backdate(fresh, orphan, 60)
    backdate(fresh, poisoned, 3600)  # the oldest: a pass looks at it first
    reconciler = Reconciler(fresh.dispatcher(), state, stall_s=3600)

    repairs = reconciler.run_once()
    assert repairs == {orphan: Repair.REDISPATCHED}
    fresh.start_worker("survivor", concurrency=1, **NO_RECONCILER)
    result = fresh.wait_final(orphan)
    assert result["status"] == "succeeded", result["error"]

    for _ in range(MAX_CHECK_FAILURES - 1):
        reconciler.run_once()
    failed = json.loads(state.result(poisoned) or "null")
    assert (failed["status"], failed["error"]["code"]) == ("failed", "INTERNAL_ERROR")
    assert fresh.client.zscore(keys.LIVE_EXECUTIONS, poisoned) is None
    assert fresh.events(poisoned)[-1].type.value == "execution.failed"


def poison(stack: Stack) -> str:
    """A live execution whose stored plan no longer parses (broken state, for real in Redis)."""
    plan = compile_plan(load_blueprint_text(chain(("a", delay(0)))), f"p-{uuid.uuid4()}", {})
    stack.dispatcher().stores.state.create(plan)
    stack.client.hset(keys.plan(plan.execution_id), "a", "{not json")
    return plan.execution_id


def test_a_stuck_execution_can_be_cancelled(fresh: Stack) -> None:
    # Every node finished, but the worker died before it ended the execution.
    state = fresh.dispatcher().stores.state
    plan = compile_plan(load_blueprint_text(chain(("a", delay(0)))), f"s-{uuid.uuid4()}", {})
    state.create(plan)
    load = state.load(plan.execution_id, "a", "gone@h")
    assert load is not None
    state.complete(plan.execution_id, "a", "{}", NodeStatus.SUCCEEDED, attempt=load.attempt)
    assert fresh.control().cancel(plan.execution_id) is ControlOutcome.DONE
    assert fresh.wait_final(plan.execution_id)["status"] == "cancelled"


def test_an_execution_whose_keys_are_of_the_wrong_type_is_let_go(fresh: Stack) -> None:
    # Its meta hash is a plain string now: neither finalize nor the bare failure can write it.
    plan = compile_plan(load_blueprint_text(chain(("a", delay(0)))), f"w-{uuid.uuid4()}", {})
    state = fresh.dispatcher().stores.state
    state.create(plan)
    fresh.client.delete(keys.meta(plan.execution_id))
    fresh.client.set(keys.meta(plan.execution_id), "not a hash")
    backdate(fresh, plan.execution_id, 3600)
    reconciler = Reconciler(fresh.dispatcher(), state, stall_s=3600)
    for _ in range(MAX_CHECK_FAILURES):
        reconciler.run_once()  # never raises: every pass runs to its end
    assert fresh.client.zscore(keys.LIVE_EXECUTIONS, plan.execution_id) is None
