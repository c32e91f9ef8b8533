"""The critical-path canvas on a real worker (-c 4): each node starts once its own inputs are
done, not when an unrelated node of the same depth is; long Blueprints go in segments whose
messages do not grow with the Blueprint. Order, never timing, is asserted: each node's start
against the finish of others, from the stored node states."""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis

from conductor.dispatch import Dispatcher
from conductor.embedded import RedisServer, WorkerProcess
from conductor.model.blueprint import Blueprint
from conductor.model.loader import load_blueprint_text
from conductor.model.settings import Settings
from conductor.waiting import wait_for_result
from nodes.registry import default_registry
from storage.state import NodeRecord
from workers.app import create_app
from workers.routes import DEFAULT_QUEUE
from workers.tasks import make_stores

SLOW_MS = 3000  # the unrelated node: far longer than the chain of short nodes beside it
SHORT_MS = 50


@dataclass(frozen=True)
class Stack:
    """A private Redis and one `conductor worker -c 4`, and a dispatcher on them."""

    server: RedisServer
    dispatcher: Dispatcher
    client: redis.Redis

    def run(self, model: Blueprint, timeout_s: float = 120) -> tuple[str, dict[str, Any]]:
        """Submit and wait; the execution id and its result."""
        plan = self.dispatcher.submit(model, {})
        stores = self.dispatcher.stores
        return plan.execution_id, wait_for_result(self.client, stores, plan.execution_id, timeout_s)

    def nodes(self, execution_id: str) -> dict[str, NodeRecord]:
        """The stored node states, with their start and finish times."""
        return self.dispatcher.stores.state.snapshot(execution_id, []).nodes


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("canvas-shapes")
    server = RedisServer(base / "redis").start()
    env = {"CONDUCTOR_DATA_DIR": str(base / "data")}
    settings = Settings.from_env({"CONDUCTOR_REDIS_URL": server.url, **env})
    worker = WorkerProcess(
        server.url, concurrency=4, env=env, name="shapes@%h", log_path=base / "worker.log"
    ).start()
    dispatcher = Dispatcher(create_app(settings), make_stores(settings), default_registry())
    client = redis.Redis.from_url(server.url)
    try:
        yield Stack(server, dispatcher, client)
    finally:
        client.close()
        worker.stop()
        server.stop()


def delays(name: str, delays_ms: dict[str, int], edges: list[tuple[str, str]]) -> Blueprint:
    """A Blueprint of `delay` nodes."""
    data = {
        "id": name,
        "name": name,
        "nodes": [
            {"id": key, "type": "delay", "parameters": {"ms": ms}} for key, ms in delays_ms.items()
        ],
        "edges": [{"source": source, "target": target} for source, target in edges],
    }
    return load_blueprint_text(json.dumps(data), json_only=True)


def assert_started_after_inputs(nodes: dict[str, NodeRecord], edges: list[tuple[str, str]]) -> None:
    """No node started before every node it depends on had finished."""
    for source, target in edges:
        finished, started = nodes[source].finished_ms, nodes[target].started_ms
        assert finished is not None and started is not None, (source, target)
        assert started >= finished, f"{target} started before {source} finished"


def finish(nodes: dict[str, NodeRecord], key: str) -> int:
    value = nodes[key].finished_ms
    assert value is not None, key
    return value


def test_uneven_branches_do_not_wait_for_each_other(stack: Stack) -> None:
    """a1 -> a2 -> a3 beside a slow b1, both into join: a2 and a3 run while b1 still runs
    (a chain of levels made a2 wait for b1), and join waits for both."""
    edges = [("a1", "a2"), ("a2", "a3"), ("a3", "join"), ("b1", "join")]
    model = delays(
        "uneven", {"a1": SHORT_MS, "a2": SHORT_MS, "a3": SHORT_MS, "b1": SLOW_MS, "join": 0}, edges
    )
    execution_id, result = stack.run(model)
    assert result["status"] == "succeeded", result["error"]
    nodes = stack.nodes(execution_id)
    assert_started_after_inputs(nodes, edges)
    assert finish(nodes, "a3") < finish(nodes, "b1"), "a2 or a3 waited for b1"


def test_ladder_pipelines_run_at_their_own_pace(stack: Stack) -> None:
    """Two 4-node pipelines into a join: the fast one ends before the slow one's first node."""
    slow = {"p1": SLOW_MS, "p2": SHORT_MS, "p3": SHORT_MS, "p4": SHORT_MS}
    fast = {f"q{n}": SHORT_MS for n in range(1, 5)}
    edges = [
        *(("p" + str(n), "p" + str(n + 1)) for n in range(1, 4)),
        *(("q" + str(n), "q" + str(n + 1)) for n in range(1, 4)),
        ("p4", "join"),
        ("q4", "join"),
    ]
    execution_id, result = stack.run(delays("ladder", {**slow, **fast, "join": 0}, edges))
    assert result["status"] == "succeeded", result["error"]
    nodes = stack.nodes(execution_id)
    assert_started_after_inputs(nodes, edges)
    assert finish(nodes, "q4") < finish(nodes, "p1"), "the fast pipeline waited for p1"


def test_a_branch_that_forks_beside_a_slow_node(stack: Stack) -> None:
    """x -> (y, z) beside a slow w, all into join: y and z run while w does, and join (the end
    of a chord whose header holds a group) starts once all are done."""
    edges = [("x", "y"), ("x", "z"), ("y", "join"), ("z", "join"), ("w", "join")]
    model = delays(
        "forked", {"x": SHORT_MS, "y": SHORT_MS, "z": SHORT_MS, "w": SLOW_MS, "join": 0}, edges
    )
    execution_id, result = stack.run(model, timeout_s=60)
    assert result["status"] == "succeeded", result["error"]
    nodes = stack.nodes(execution_id)
    assert_started_after_inputs(nodes, edges)
    assert max(finish(nodes, "y"), finish(nodes, "z")) < finish(nodes, "w")


LOOP_BESIDE_SLOW = """
id: loop-beside
name: Loop beside a slow node
nodes:
  - {id: start, type: edit-fields, parameters: {values: {xs: [1, 2, 3]}, keepOnlySet: true}}
  - {id: each, type: loop, parameters: {iterateOver: xs, concurrency: 2}}
  - {id: double, type: transform, parameters: {transformFunction: "x => x * 2"}}
  - id: report
    type: edit-fields
    parameters: {values: {records: "{{$inputs.loop.results}}"}, keepOnlySet: true}
  - {id: slow, type: delay, parameters: {ms: 2000}}
  - id: join
    type: edit-fields
    parameters: {values: {records: "{{$inputs.r.result.records}}"}, keepOnlySet: true}
edges:
  - {source: start, target: each}
  - {source: each, target: double, sourceHandle: item}
  - {source: each, target: report, targetHandle: loop}
  - {source: report, target: join, targetHandle: r}
  - {source: slow, target: join, targetHandle: s}
"""


def test_a_loop_in_a_branch_beside_a_slow_node(stack: Stack) -> None:
    """The loop replaces its task with its items' canvas inside a chord's header (a branch of
    a group): its items and collecting run end before the slow node, and join waits for both."""
    execution_id, result = stack.run(load_blueprint_text(LOOP_BESIDE_SLOW), timeout_s=60)
    assert result["status"] == "succeeded", result["error"]
    records = result["data"]["join"]["result"]["records"]
    assert [record["item"] for record in records] == [1, 2, 3], records
    nodes = stack.nodes(execution_id)
    assert finish(nodes, "report") < finish(nodes, "slow")
    assert_started_after_inputs(nodes, [("report", "join"), ("slow", "join")])


def noop_chain(length: int) -> Blueprint:
    """`length` edit-fields nodes in a line."""
    ids = [f"n{index:05d}" for index in range(length)]
    data = {
        "id": f"chain-{length}",
        "name": f"chain of {length}",
        "nodes": [
            {"id": key, "type": "edit-fields", "parameters": {"keepOnlySet": True, "values": {}}}
            for key in ids
        ],
        "edges": [{"source": a, "target": b} for a, b in itertools.pairwise(ids)],
    }
    return load_blueprint_text(json.dumps(data), json_only=True)


# A push onto the node queue or one of its priority lists (`conductor\x06\x164`: kombu's
# Redis transport keeps one list per priority level; MONITOR shows the bytes escaped).
NODE_QUEUE_PUSH = re.compile(rf"^LPUSH {DEFAULT_QUEUE}(\\x06\\x16\d| )")


class MessageSizes:
    """The largest task message pushed onto the node queue, seen through MONITOR."""

    def __init__(self, url: str) -> None:
        self.largest = 0
        self.count = 0
        self._client = redis.Redis.from_url(url, socket_timeout=None)
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> MessageSizes:
        self._thread.start()
        assert self._ready.wait(10), "MONITOR did not start"
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._client.ping()  # one more command, so the monitor loop wakes up and sees the stop
        self._thread.join(10)
        self._client.close()

    def _watch(self) -> None:
        with self._client.monitor() as monitor:  # type: ignore[no-untyped-call]
            self._ready.set()
            for command in monitor.listen():
                if self._stop.is_set():
                    return
                text = str(command.get("command", ""))
                if NODE_QUEUE_PUSH.match(text):
                    self.count += 1
                    self.largest = max(self.largest, len(text))


def test_a_long_chain_goes_in_messages_of_bounded_size(stack: Stack) -> None:
    """Ten times the nodes, about the same largest message; the long chain completes, and a
    small Blueprint submitted after it finishes first."""
    sizes = {}
    for length in (200, 2000):
        with MessageSizes(stack.server.url) as watched:
            plan = stack.dispatcher.submit(noop_chain(length), {})
            _, small = stack.run(noop_chain(3))
            long = wait_for_result(
                stack.client, stack.dispatcher.stores, plan.execution_id, timeout_s=600
            )
        assert long["status"] == "succeeded", long["error"]
        assert small["status"] == "succeeded", small["error"]
        assert small["duration_ms"] < long["duration_ms"]
        assert watched.count >= length
        sizes[length] = watched.largest
    assert sizes[2000] < 1.2 * sizes[200], sizes
    assert sizes[2000] < 64 * 1024, sizes
