"""conductor/wakeups.py and conductor/signals.py over the in-memory stores, with a Celery app
on kombu's in-memory transport (what is sent is read back from it)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery

from conductor.compiler import compile_plan
from conductor.control import Control
from conductor.dispatch import Dispatcher
from conductor.model.loader import blueprint_from_data
from conductor.model.waits import MAX_PENDING_SIGNALS, Wait
from conductor.signals import SignalRefused, Signals, listens
from conductor.wakeups import WakeUps
from nodes.base import NodeContext
from nodes.errors import NodeError
from nodes.registry import NodeRegistry, builtin_node_types
from nodes.wait_for_signal import WaitForSignalNode, WaitForSignalParameters
from storage.blobs import MemoryBlobStore
from storage.memory_state import MemoryStateStore
from storage.waits import Sent, WakeUp
from workers.stores import Stores

EXECUTION_ID = "exec-wake"
QUEUE = "wakeups-test"


def blueprint(name: str = "go") -> dict[str, Any]:
    wait = {"id": "w", "type": "wait-for-signal", "parameters": {"name": name}}
    return {"id": "b", "name": "B", "nodes": [wait], "edges": []}


@pytest.fixture
def dispatcher() -> Iterator[Dispatcher]:
    """A dispatcher over a memory store whose execution's node `w` is parked."""
    app = Celery("wakeups-test", broker="memory://")
    app.conf.task_default_queue = QUEUE
    stores = Stores(state=MemoryStateStore(), blobs=MemoryBlobStore())
    plan = compile_plan(blueprint_from_data(blueprint()), EXECUTION_ID, {})
    stores.state.create(plan)
    load = stores.state.load(EXECUTION_ID, "w", "w1")
    assert load is not None
    stores.state.park(EXECUTION_ID, "w", Wait(20, "go"), attempt=load.attempt)
    yield Dispatcher(app, stores, NodeRegistry(builtin_node_types()))
    app.close()


def sent(dispatcher: Dispatcher) -> int:
    """Messages on the memory transport's queue (shared by the tests of this process)."""
    with dispatcher.app.connection_for_write() as connection:
        channel: Any = connection.default_channel
        declared = channel.queue_declare(QUEUE)
        return int(declared.message_count)


def test_a_due_wake_up_sends_its_execution_again(dispatcher: Dispatcher) -> None:
    wakeups = WakeUps(dispatcher, dispatcher.stores.state)
    before = sent(dispatcher)
    assert wakeups.fire_due() == []  # not due yet
    time.sleep(0.03)
    assert wakeups.fire_due() == [EXECUTION_ID]
    assert sent(dispatcher) == before + 1
    assert wakeups.fire_due() == []  # claimed: not again until its retry time


@pytest.mark.parametrize("command", ["cancel", "pause"])
def test_a_wake_up_of_an_execution_over_or_paused_is_dropped(
    dispatcher: Dispatcher, command: str
) -> None:
    getattr(Control(dispatcher), command)(EXECUTION_ID)
    time.sleep(0.03)
    state = dispatcher.stores.state
    assert WakeUps(dispatcher, state).fire_due() == []
    assert isinstance(state, MemoryStateStore)
    assert WakeUp(EXECUTION_ID, "w") not in state.wait_state.wakeups


def test_a_signal_to_a_parked_node_sends_its_execution(dispatcher: Dispatcher) -> None:
    before = sent(dispatcher)
    receipt = Signals(dispatcher).send(EXECUTION_ID, "go", {"n": 1})
    assert receipt.woken == ("w",)
    assert sent(dispatcher) == before + 1


@pytest.mark.parametrize(
    ("name", "payload", "words"),
    [
        ("bad name", 1, "signal name 'bad name'"),
        ("go", float("nan"), "not JSON"),
        ("go", "x" * (1024 * 1024 + 1), "over 1024 KiB"),
    ],
)
def test_a_bad_name_or_payload_is_refused_as_invalid(
    dispatcher: Dispatcher, name: str, payload: Any, words: str
) -> None:
    with pytest.raises(SignalRefused, match=words) as caught:
        Signals(dispatcher).send(EXECUTION_ID, name, payload)
    assert caught.value.invalid


def test_what_nothing_can_take_is_refused(dispatcher: Dispatcher) -> None:
    signals = Signals(dispatcher)
    with pytest.raises(SignalRefused) as unknown:
        signals.send("nope", "go")
    assert unknown.value.reason is Sent.NOT_FOUND
    with pytest.raises(SignalRefused, match="waits for 'stop'"):
        signals.send(EXECUTION_ID, "stop")
    for _ in range(MAX_PENDING_SIGNALS):
        dispatcher.stores.state.signal(EXECUTION_ID, "go", "0", max_pending=MAX_PENDING_SIGNALS)
    with pytest.raises(SignalRefused, match=f"keeps {MAX_PENDING_SIGNALS} signals") as full:
        signals.send(EXECUTION_ID, "go")
    assert full.value.reason is Sent.FULL
    Control(dispatcher).cancel(EXECUTION_ID)
    with pytest.raises(SignalRefused, match="is cancelled") as over:
        signals.send(EXECUTION_ID, "go")
    assert over.value.reason is Sent.OVER


def test_a_templated_name_listens_for_any_signal() -> None:
    plan = compile_plan(blueprint_from_data(blueprint("{{$input.kind}}")), "x", {})
    assert listens(plan, "anything")
    assert not listens(compile_plan(blueprint_from_data(blueprint()), "y", {}), "other")


def test_wait_for_signal_does_not_run_outside_a_worker() -> None:
    params = WaitForSignalParameters(name="go")
    with pytest.raises(NodeError, match="only on a worker"):
        WaitForSignalNode().run(params, NodeContext(execution_id="e", node_id="w", inputs={}))
