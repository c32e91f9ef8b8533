"""A private Conductor stack for fault tests: its own Redis (AOF), recorder and workers, and the
checks every fault test ends with."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import redis

from conductor.control import Control
from conductor.dispatch import Dispatcher
from conductor.embedded import RedisServer, ServiceProcess, WorkerProcess
from conductor.model.admission import BROKER_PRIORITY_STEPS
from conductor.model.loader import load_blueprint_text
from conductor.model.settings import Settings
from nodes.registry import default_registry
from storage import keys
from storage.events import Event, EventType
from storage.history import HistoryStore, open_history
from storage.queue_depths import queue_depths
from storage.redis_state import RedisStateStore
from storage.state import NodeStatus
from tests.conftest import NEVER_PARK_MS
from workers.app import create_app
from workers.tasks import make_stores

TERMINAL_EVENTS = {"execution.succeeded", "execution.failed", "execution.cancelled"}


def wait_until(condition: Callable[[], Any], what: str, timeout_s: float = 30) -> Any:
    """Poll `condition` until it returns something true."""
    deadline = time.monotonic() + timeout_s
    while not (found := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return found


NODE_QUEUE = "conductor"  # kombu's lists of waiting node messages (one per priority)
UNACKED = "unacked"  # kombu's hash of delivered, unacknowledged messages


def queue_lists(queue: str) -> list[str]:
    """kombu's Redis lists of a queue: the bare name (priority 0) and `<queue>\x06\x16<p>`."""
    return [queue, *(f"{queue}\x06\x16{step}" for step in BROKER_PRIORITY_STEPS[1:])]


def queued(client: redis.Redis, queue: str) -> int:
    """Messages waiting in `queue`, all priorities."""
    return queue_depths(client, [queue])[queue]


def drop_queue(client: redis.Redis, queue: str) -> int:
    """Delete every list of `queue` (its messages are lost); how many lists there were."""
    return int(client.delete(*queue_lists(queue)))


def messages_in_flight(
    client: redis.Redis,
    execution_id: str | None = None,
    queue: str = NODE_QUEUE,
    *,
    queued_too: bool = True,
) -> set[str]:
    """Task ids of the messages (of `execution_id`'s nodes) queued on `queue` (unless not
    `queued_too`) or delivered and not yet acknowledged."""
    lists = queue_lists(queue) if queued_too else []
    queued = [json.loads(m) for name in lists for m in client.lrange(name, 0, -1)]
    raw: dict[bytes, bytes] = client.hgetall(UNACKED)  # type: ignore[assignment]
    delivered = [json.loads(value)[0] for value in raw.values()]
    ours = f"('{execution_id}'"
    return {
        m["headers"]["id"]
        for m in [*queued, *delivered]
        if execution_id is None or str(m["headers"].get("argsrepr", "")).startswith(ours)
    }


def wait_consumed(
    client: redis.Redis,
    task_id: str | None = None,
    *,
    execution_id: str | None = None,
    stranded: frozenset[str] = frozenset(),
    timeout_s: float = 30,
) -> None:
    """Until the message `task_id` (or every message, of `execution_id`'s nodes when given, but
    the `stranded` ones a dead worker holds) is neither queued nor delivered and unacknowledged:
    its task ran and returned. Three polls in a row, since kombu moves a message from the queue
    to its unacknowledged hash in two requests."""
    deadline = time.monotonic() + timeout_s
    quiet = 0
    while quiet < 3:
        waiting = messages_in_flight(client, execution_id) - stranded
        done = task_id not in waiting if task_id is not None else not waiting
        quiet = quiet + 1 if done else 0
        assert time.monotonic() < deadline, f"messages still in flight: {sorted(waiting)}"
        time.sleep(0.05)


@dataclass
class Stack:
    """Redis, a recorder and workers, all separate processes; the test drives them."""

    redis_server: RedisServer
    data_dir: Path
    history_url: str
    extra_env: dict[str, str] = field(default_factory=dict)
    workers: list[WorkerProcess] = field(default_factory=list)
    recorder: ServiceProcess | None = None

    @property
    def env(self) -> dict[str, str]:
        """Environment of every process of the stack."""
        return {
            "CONDUCTOR_REDIS_URL": self.redis_server.url,
            "CONDUCTOR_DATA_DIR": str(self.data_dir),
            "CONDUCTOR_HISTORY_URL": self.history_url,
            "CONDUCTOR_RECONCILE_EVERY_S": "0.5",
            "CONDUCTOR_STALL_S": "4",
            "CONDUCTOR_LEASE_S": "3",
            "CONDUCTOR_HTTP_ALLOW": "127.0.0.1",  # the tests' loopback servers
            "CONDUCTOR_PARK_DELAY_MS": NEVER_PARK_MS,  # a long delay holds its worker here
            **self.extra_env,
        }

    @property
    def settings(self) -> Settings:
        """Client settings for this stack."""
        return Settings.from_env(self.env)

    @cached_property
    def client(self) -> redis.Redis:
        """A client of the stack's Redis."""
        return redis.Redis.from_url(self.redis_server.url)

    @cached_property
    def _dispatcher(self) -> Dispatcher:
        settings = self.settings
        return Dispatcher(create_app(settings), make_stores(settings), default_registry())

    def dispatcher(self) -> Dispatcher:
        """A dispatcher as a service would use."""
        return self._dispatcher

    def control(self) -> Control:
        """Execution control as the API uses it."""
        return Control(self.dispatcher())

    def submit(self, text: str, inputs: dict[str, Any] | None = None) -> str:
        """Submit Blueprint YAML; the execution id."""
        return self.dispatcher().submit(load_blueprint_text(text), inputs or {}).execution_id

    def start_worker(self, name: str, concurrency: int = 2, **env: str) -> WorkerProcess:
        """One more `conductor worker` process."""
        log = self.data_dir / f"{name}.log"
        process = WorkerProcess(
            self.redis_server.url,
            concurrency=concurrency,
            env={**self.env, **env},
            name=f"{name}@%h",
            log_path=log,
        ).start()
        self.workers.append(process)
        return process

    def start_recorder(self) -> ServiceProcess:
        """`conductor recorder` for the stack's history store."""
        self.recorder = ServiceProcess(["recorder", "--name", "faults"], self.env).start()
        return self.recorder

    def stop_all(self) -> None:
        """Stop every process this stack started."""
        for process in self.workers:
            process.stop()
        if self.recorder is not None:
            self.recorder.stop()
        self.client.close()
        state = self._dispatcher.stores.state
        if isinstance(state, RedisStateStore):
            state.client.close()
        self._dispatcher.app.close()

    def events(self, execution_id: str) -> list[Event]:
        """The execution's events as Redis logged them."""
        raw = self.client.lrange(keys.events_log(execution_id), 0, -1)
        return [Event.model_validate_json(text) for text in raw]

    def wait_event(
        self, execution_id: str, kind: str, node_id: str | None = None, timeout_s: float = 30
    ) -> Event:
        """The first event of `kind` (for `node_id`), once it is logged."""

        def found() -> Event | None:
            return next(
                (
                    e
                    for e in self.events(execution_id)
                    if e.type == kind and (node_id is None or e.node_id == node_id)
                ),
                None,
            )

        event: Event = wait_until(found, f"{kind} {node_id or ''}", timeout_s)
        return event

    def wait_final(self, execution_id: str, timeout_s: float = 60) -> dict[str, Any]:
        """The execution's result object once it is final."""
        raw = wait_until(
            lambda: self.client.get(keys.result(execution_id)), "a final result", timeout_s
        )
        result: dict[str, Any] = json.loads(raw)
        return result

    def history(self) -> HistoryStore:
        """The stack's history store (close it after use)."""
        return open_history(self.history_url)


@contextmanager
def private_stack(base: Path, worker_name: str) -> Iterator[Stack]:
    """A private Redis, a recorder and one two-process worker, under `base`."""
    (base / "data" / "files").mkdir(parents=True)
    server = RedisServer(base / "redis").start()
    stack = Stack(server, base / "data", f"sqlite:///{base / 'history.sqlite3'}")
    stack.start_recorder()
    stack.start_worker(worker_name, concurrency=2)
    try:
        yield stack
    finally:
        stack.stop_all()
        server.stop()


def assert_one_success_per_run(events: list[Event]) -> None:
    """No node succeeds twice in one run (a retry starts a new run of what it reset)."""
    successes: Counter[str | None] = Counter()
    for event in events:
        if event.type == EventType.EXECUTION_RESUMED and event.data.get("retry"):
            successes.clear()
        elif event.type == EventType.NODE_SUCCEEDED:
            successes[event.node_id] += 1
            assert successes[event.node_id] == 1, (event.node_id, event.seq)


def assert_sound(stack: Stack, execution_ids: list[str], timeout_s: float = 60) -> None:
    """After a fault: every accepted execution is final, at most one success per node, its
    history rows equal its events, and nothing is left running."""
    history = stack.history()
    try:
        for execution_id in execution_ids:
            result = stack.wait_final(execution_id, timeout_s)
            events = stack.events(execution_id)
            assert [e.seq for e in events] == list(range(1, len(events) + 1)), execution_id
            terminal = [e for e in events if e.type in TERMINAL_EVENTS]
            retries = [e for e in events if e.type == "execution.resumed" and e.data.get("retry")]
            assert len(terminal) == 1 + len(retries), terminal  # one end per run
            assert terminal[-1].type == f"execution.{result['status']}"
            assert_one_success_per_run(events)
            snapshot = stack.dispatcher().stores.state.snapshot(execution_id, [])
            running = [k for k, r in snapshot.nodes.items() if r.status is NodeStatus.RUNNING]
            assert running == [], running
            assert stack.client.zscore(keys.LIVE_EXECUTIONS, execution_id) is None

            def recorded(execution_id: str = execution_id, count: int = len(events)) -> bool:
                return len(history.events(execution_id)) == count

            wait_until(recorded, f"history of {execution_id}", timeout_s)
            assert [e.id for e in history.events(execution_id)] == [e.id for e in events]
            record = history.execution(execution_id)
            assert record is not None and record.status.value == result["status"]
            runs = {run.node_id: run.status for run in history.node_runs(execution_id)}
            for key, run_status in runs.items():
                assert run_status is snapshot.nodes[key].status, (key, run_status)
    finally:
        history.close()


class Hits:
    """A local HTTP server that counts requests per path (slow ones sleep first)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        hits = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hits.counts[self.path] += 1
                if self.path.startswith("/slow"):
                    time.sleep(1.5)
                body = b'{"ok": true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def chain(*nodes: tuple[str, str]) -> str:
    """Blueprint YAML: the nodes (id, inline YAML mapping body) one after another."""
    lines = [f"  - {{id: {node_id}, {body}}}" for node_id, body in nodes]
    edges = [f"  - {{source: {a[0]}, target: {b[0]}}}" for a, b in itertools.pairwise(nodes)]
    return (
        "id: chain\nname: Chain\nnodes:\n"
        + "\n".join(lines)
        + "\nedges:\n"
        + ("\n".join(edges) or "  []")
    )


def delay(ms: int) -> str:
    return f"type: delay, parameters: {{ms: {ms}, timeout: {max(30_000, ms * 2)}}}"
