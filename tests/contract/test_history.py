"""The execution-history store's contract, on SQLite (memory and file) and PostgreSQL."""

from __future__ import annotations

import random
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from storage.cursors import InvalidCursor
from storage.events import Event, EventType
from storage.history import (
    ExecutionRecord,
    HistoryError,
    HistoryStore,
    InvalidEvent,
    NodeRunRecord,
    open_history,
)
from storage.history_state import check_event, derive
from storage.sql_history import SqlHistoryStore, open_sql_history
from storage.sql_schema import SCHEMA_VERSION
from storage.state import ExecutionStatus, NodeStatus

T0 = 1_700_000_000.0


class Script:
    """One execution's events as an emitter would write them: seq from 1, ts 1 s apart."""

    def __init__(self, execution_id: str | None = None, start: float = T0) -> None:
        self.execution_id = execution_id or str(uuid.uuid4())
        self.start = start
        self.events: list[Event] = []

    def add(self, kind: EventType, node_id: str | None = None, **data: Any) -> Event:
        """Append one event."""
        seq = len(self.events) + 1
        event = Event(
            id=str(uuid.uuid4()),
            execution_id=self.execution_id,
            seq=seq,
            type=kind,
            node_id=node_id,
            ts=self.start + seq,
            data=data,
        )
        self.events.append(event)
        return event

    def queued(self, blueprint_id: str = "bp-1", **inputs: Any) -> Script:
        """execution.queued."""
        self.add(
            EventType.EXECUTION_QUEUED,
            blueprint_id=blueprint_id,
            blueprint_name="Hello World Flow",
            blueprint_version="1.0.0",
            inputs=inputs,
            nodes=10,
        )
        return self

    def ended(self, status: ExecutionStatus, error: dict[str, Any] | None = None) -> Script:
        """The terminal event, with a small result."""
        result = {"status": status.value, "outputs": {"n": {"message": "Hello"}}, "error": error}
        self.add(
            EventType(f"execution.{status.value}"),
            status=status.value,
            error=error,
            duration_ms=1234,
            result=result,
        )
        return self

    def node_ran(self, node_id: str, worker: str = "celery@host-1") -> Script:
        """node.started then node.succeeded."""
        self.add(EventType.NODE_STARTED, node_id, attempt=1, worker=worker, type="edit-fields")
        self.add(EventType.NODE_SUCCEEDED, node_id, duration_ms=12)
        return self


def ten_node_execution(start: float = T0, blueprint_id: str = "bp-1") -> Script:
    """A realistic small execution: 10 nodes run once each, then success."""
    script = Script(start=start).queued(blueprint_id, inputPath="/data/sample.csv")
    script.add(EventType.EXECUTION_STARTED)
    for index in range(10):
        script.node_ran(f"node-{index}", worker=f"celery@host-{index % 2}")
    return script.ended(ExecutionStatus.SUCCEEDED)


def eventful_execution() -> Script:
    """Retries, progress, a pause, skipped, cached and settled-failed nodes, then failure."""
    error = {"code": "NODE_FAILED", "message": "boom", "nodeId": "e"}
    script = Script().queued(inputPath="/x")
    script.add(EventType.EXECUTION_STARTED)
    script.add(EventType.NODE_STARTED, "a", attempt=1, worker="w1", type="http-request")
    script.add(EventType.NODE_RETRYING, "a", attempt=1, error={"message": "503"}, retry_in_s=1)
    script.add(EventType.NODE_STARTED, "a", attempt=2, worker="w2", type="http-request")
    script.add(EventType.NODE_PROGRESS, "a", progress=0.5, message="half")
    profile = {"queue_wait_ms": 7, "cpu_ms": 30, "peak_rss_bytes": 9 << 20, "depends_on": []}
    script.add(EventType.NODE_SUCCEEDED, "a", duration_ms=40, profile=profile)
    script.add(EventType.EXECUTION_PAUSED)
    script.add(EventType.EXECUTION_RESUMED)
    script.add(EventType.NODE_SKIPPED, "b", duration_ms=0, reason="runIf is false: $vars.go")
    script.add(EventType.NODE_CACHED, "c", key="sha256:abc")
    script.add(EventType.NODE_STARTED, "d", attempt=1, worker="w1", type="code")
    script.add(EventType.NODE_RETRYING, "d", attempt=1, error={"message": "flaky"})
    script.add(EventType.NODE_STARTED, "d", attempt=2, worker="w1", type="code")
    script.add(EventType.NODE_FAILED, "d", error={"message": "bad"}, settled=True)
    script.add(EventType.NODE_STARTED, "e", attempt=1, worker="w2", type="code")
    script.add(EventType.NODE_FAILED, "e", error=error, settled=False)
    return script.ended(ExecutionStatus.FAILED, error=error)


def paused_execution() -> Script:
    """Paused, resumed, paused again: same rank, so the highest seq decides."""
    script = Script().queued()
    script.add(EventType.EXECUTION_STARTED)
    script.add(EventType.NODE_STARTED, "a", attempt=1, worker="w1", type="code")
    script.add(EventType.EXECUTION_PAUSED)
    script.add(EventType.NODE_SUCCEEDED, "a", duration_ms=3)
    script.add(EventType.EXECUTION_RESUMED)
    script.add(EventType.NODE_STARTED, "b", attempt=1, worker="w1", type="code")
    script.add(EventType.EXECUTION_PAUSED)
    return script


def cancelled_execution() -> Script:
    """Cancelled while one node ran: an earlier node keeps its success, the running one ends
    cancelled (a cascade that must not depend on which events arrive first)."""
    script = Script().queued()
    script.add(EventType.EXECUTION_STARTED)
    script.add(EventType.NODE_STARTED, "a", attempt=1, worker="w1", type="code")
    script.add(EventType.NODE_SUCCEEDED, "a", duration_ms=3)
    script.add(EventType.NODE_STARTED, "b", attempt=1, worker="w1", type="code")
    return script.ended(ExecutionStatus.CANCELLED, error={"code": "CANCELLED"})


def retried_execution() -> Script:
    """Failed, retried (execution.resumed with retry), running again: the old ending goes."""
    error = {"code": "EXECUTION_FAILED", "message": "boom", "nodeId": "a"}
    script = Script().queued()
    script.add(EventType.EXECUTION_STARTED)
    script.add(EventType.NODE_STARTED, "a", attempt=1, worker="w1", type="code")
    script.add(EventType.NODE_FAILED, "a", error=error, settled=False, duration_ms=5)
    script.ended(ExecutionStatus.FAILED, error=error)
    script.add(EventType.EXECUTION_RESUMED, status="running", retry=True, nodes=["a"])
    script.add(EventType.NODE_STARTED, "a", attempt=2, worker="w2", type="code")
    script.add(EventType.NODE_RETRYING, "a", attempt=2, error={"message": "503"}, retry_in_s=1)
    return script


def cancelled_twice_execution() -> Script:
    """Cancelled, retried, cancelled again before the node restarted."""
    script = Script().queued()
    script.add(EventType.EXECUTION_STARTED)
    script.add(EventType.NODE_STARTED, "a", attempt=1, worker="w1", type="code")
    script.ended(ExecutionStatus.CANCELLED, error={"code": "CANCELLED"})
    script.add(EventType.EXECUTION_RESUMED, status="running", retry=True, nodes=["a"])
    return script.ended(ExecutionStatus.CANCELLED, error={"code": "CANCELLED"})


def reopened_then_cancelled_execution() -> Script:
    """A failed node sent back to pending by a retry, cancelled before it started again."""
    error = {"code": "EXECUTION_FAILED", "message": "boom", "nodeId": "a"}
    script = Script().queued()
    script.add(EventType.EXECUTION_STARTED)
    script.add(EventType.NODE_STARTED, "a", attempt=1, worker="w1", type="code")
    script.add(EventType.NODE_FAILED, "a", error=error, settled=False, duration_ms=5)
    script.ended(ExecutionStatus.FAILED, error=error)
    script.add(EventType.EXECUTION_RESUMED, status="running", retry=True, nodes=["a", "b"])
    return script.ended(ExecutionStatus.CANCELLED, error={"code": "CANCELLED"})


SCENARIOS = {
    "eventful": eventful_execution,
    "paused": paused_execution,
    "cancelled": cancelled_execution,
    "retried": retried_execution,
    "cancelled twice": cancelled_twice_execution,
    "reopened then cancelled": reopened_then_cancelled_execution,
}


def relabel(events: list[Event], execution_id: str) -> list[Event]:
    """The same events for another execution id (and so other event ids)."""
    return [
        event.model_copy(update={"id": f"{execution_id}/{event.id}", "execution_id": execution_id})
        for event in events
    ]


def shuffled_delivery(events: list[Event], rng: random.Random) -> list[list[Event]]:
    """The events shuffled, some sent twice, cut into batches of 1 to 6."""
    delivery = events + rng.sample(events, k=len(events) // 3)
    rng.shuffle(delivery)
    batches = []
    while delivery:
        size = rng.randint(1, 6)
        batches.append(delivery[:size])
        delivery = delivery[size:]
    return batches


def comparable(
    execution: ExecutionRecord | None, runs: list[NodeRunRecord]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """State without the execution id, to compare two executions' state."""
    assert execution is not None
    return (
        execution.model_dump(exclude={"id"}),
        [run.model_dump(exclude={"execution_id"}) for run in runs],
    )


def state_of(store: SqlHistoryStore, execution_id: str) -> tuple[Any, ...]:
    """Everything stored about one execution."""
    return (
        store.execution(execution_id),
        store.node_runs(execution_id),
        store.events(execution_id),
    )


# ---- recording and reading ------------------------------------------------------------------


def test_an_execution_is_recorded_from_its_events(store: SqlHistoryStore) -> None:
    script = eventful_execution()

    assert store.record(script.events) == len(script.events)

    execution = store.execution(script.execution_id)
    assert execution is not None
    assert execution.status == ExecutionStatus.FAILED
    assert (execution.blueprint_id, execution.blueprint_name) == ("bp-1", "Hello World Flow")
    assert execution.blueprint_version == "1.0.0"
    assert execution.inputs == {"inputPath": "/x"}
    assert execution.created_at == T0 + 1
    assert execution.started_at == T0 + 2
    assert execution.finished_at == T0 + len(script.events)
    assert execution.duration_ms == 1234
    assert execution.error == {"code": "NODE_FAILED", "message": "boom", "nodeId": "e"}
    assert execution.result is not None
    assert execution.result["status"] == "failed"
    assert execution.last_seq == len(script.events)
    runs = {run.node_id: run for run in store.node_runs(script.execution_id)}
    assert runs["a"].model_dump(exclude={"execution_id"}) == {
        "node_id": "a",
        "type": "http-request",
        "status": NodeStatus.SUCCEEDED,
        "attempts": 2,
        "worker": "w2",
        "started_at": T0 + 3,
        "finished_at": T0 + 7,
        "duration_ms": 40,
        "error": None,
        "queue_wait_ms": 7,  # the profile of its outcome
        "cpu_ms": 30,
        "peak_rss_bytes": 9 << 20,
        "input_bytes": None,
        "output_bytes": None,
        "depends_on": [],
    }
    assert (runs["b"].status, runs["b"].attempts, runs["b"].started_at) == (
        NodeStatus.SKIPPED,
        0,
        None,
    )
    assert runs["c"].status == NodeStatus.SUCCEEDED
    assert (runs["d"].status, runs["d"].error, runs["d"].attempts) == (
        NodeStatus.FAILED,
        {"message": "bad"},
        2,
    )
    assert store.events(script.execution_id) == script.events
    assert store.execution("unknown") is None
    assert store.node_runs("unknown") == []
    assert store.events("unknown") == []


def test_node_runs_are_ordered_by_start_then_id_never_started_last(
    store: SqlHistoryStore,
) -> None:
    script = Script().queued()
    script.add(EventType.NODE_SKIPPED, "z-skipped")
    script.add(EventType.NODE_STARTED, "b", attempt=1)
    script.add(EventType.NODE_SKIPPED, "a-skipped")
    script.add(EventType.NODE_STARTED, "late", attempt=1)
    script.events[2] = script.events[2].model_copy(update={"ts": script.events[4].ts})
    store.record(script.events)

    order = [run.node_id for run in store.node_runs(script.execution_id)]

    assert order == ["b", "late", "a-skipped", "z-skipped"]


def test_events_after_seq_in_seq_order_with_limit(store: SqlHistoryStore) -> None:
    script = ten_node_execution()
    store.record(list(reversed(script.events)))

    def seqs(after_seq: int = 0, limit: int | None = None) -> list[int]:
        return [e.seq for e in store.events(script.execution_id, after_seq, limit)]

    assert seqs() == list(range(1, 24))
    assert seqs(after_seq=20) == [21, 22, 23]
    assert seqs(after_seq=5, limit=3) == [6, 7, 8]
    assert seqs(after_seq=23) == []


# ---- idempotency, order, forward-only states --------------------------------------------------


def test_recording_a_batch_again_stores_and_changes_nothing(store: SqlHistoryStore) -> None:
    script = eventful_execution()
    assert store.record(script.events) == len(script.events)
    before = state_of(store, script.execution_id)

    assert store.record(script.events) == 0
    assert store.record(script.events[3:9]) == 0
    assert store.record(script.events + script.events) == 0
    assert store.record([]) == 0

    assert state_of(store, script.execution_id) == before


def test_duplicates_within_one_batch_are_stored_once(store: SqlHistoryStore) -> None:
    script = ten_node_execution()

    assert store.record(script.events + script.events[:5]) == len(script.events)

    assert len(store.events(script.execution_id)) == len(script.events)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_derivation_ignores_order_and_duplicates(scenario: str) -> None:
    events = SCENARIOS[scenario]().events
    expected = derive(events)
    rng = random.Random(f"derive-{scenario}")
    for _ in range(1000):
        delivery = events + rng.sample(events, k=len(events) // 2)
        rng.shuffle(delivery)
        assert derive(delivery) == expected


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_shuffled_and_repeated_delivery_ends_in_the_ordered_state(
    store: SqlHistoryStore, scenario: str
) -> None:
    ordered = SCENARIOS[scenario]()
    store.record(ordered.events)
    expected = comparable(*state_of(store, ordered.execution_id)[:2])
    assert expected == comparable(*derive(ordered.events))
    rng = random.Random(f"delivery-{scenario}")

    for attempt in range(15):
        execution_id = f"shuffled-{attempt}"
        events = relabel(ordered.events, execution_id)
        stored = sum(store.record(batch) for batch in shuffled_delivery(events, rng))

        assert stored == len(events)
        assert comparable(*state_of(store, execution_id)[:2]) == expected, attempt
        assert store.events(execution_id) == events


def test_states_only_move_forward(store: SqlHistoryStore) -> None:
    script = Script().queued()
    queued, started = script.events[0], script.add(EventType.EXECUTION_STARTED)
    node_started = script.add(EventType.NODE_STARTED, "a", attempt=1, worker="w1", type="t")
    retrying = script.add(EventType.NODE_RETRYING, "a", attempt=1, error={"m": "retry"})
    node_failed = script.add(EventType.NODE_FAILED, "a", error={"m": "final"}, settled=True)
    succeeded = script.ended(ExecutionStatus.SUCCEEDED).events[-1]

    store.record([succeeded, node_failed])
    store.record([retrying])
    store.record([node_started, started])
    store.record([queued])

    execution = store.execution(script.execution_id)
    assert execution is not None
    assert execution.status == ExecutionStatus.SUCCEEDED
    assert (execution.started_at, execution.finished_at) == (started.ts, succeeded.ts)
    assert execution.blueprint_id == "bp-1"
    [run] = store.node_runs(script.execution_id)
    assert (run.status, run.error, run.finished_at) == (
        NodeStatus.FAILED,
        {"m": "final"},
        node_failed.ts,
    )
    assert (run.started_at, run.worker, run.attempts) == (node_started.ts, "w1", 1)


def test_paused_and_running_are_decided_by_the_highest_seq(store: SqlHistoryStore) -> None:
    script = Script().queued()
    script.add(EventType.EXECUTION_STARTED)
    paused = script.add(EventType.EXECUTION_PAUSED)
    resumed = script.add(EventType.EXECUTION_RESUMED)

    store.record([resumed])
    store.record([paused, *script.events[:2]])

    execution = store.execution(script.execution_id)
    assert execution is not None
    assert execution.status == ExecutionStatus.RUNNING


def test_events_before_queued_make_a_placeholder_that_queued_fills_in(
    store: SqlHistoryStore,
) -> None:
    script = ten_node_execution()
    queued, later = script.events[0], script.events[1:8]

    assert store.record(later) == len(later)
    placeholder = store.execution(script.execution_id)
    assert placeholder is not None
    assert (placeholder.blueprint_id, placeholder.blueprint_name) == ("", "")
    assert placeholder.status == ExecutionStatus.RUNNING
    assert placeholder.created_at == later[0].ts
    assert placeholder.last_seq == 8
    assert len(store.node_runs(script.execution_id)) == 3

    assert store.record([queued]) == 1
    filled = store.execution(script.execution_id)
    assert filled is not None
    assert (filled.blueprint_id, filled.inputs) == ("bp-1", {"inputPath": "/data/sample.csv"})
    assert filled.status == ExecutionStatus.RUNNING
    assert filled.created_at == queued.ts
    assert filled.last_seq == 8


# ---- failures ---------------------------------------------------------------------------------


def test_a_batch_that_fails_midway_is_rolled_back_entirely(store: SqlHistoryStore) -> None:
    known = Script().queued()
    store.record(known.events)
    before = state_of(store, known.execution_id)
    known.add(EventType.EXECUTION_STARTED)
    known.node_ran("a")
    fresh = ten_node_execution()
    invalid = Script(execution_id="zzz-last").add(EventType.EXECUTION_QUEUED, inputs={})

    with pytest.raises(InvalidEvent, match=invalid.id):
        store.record([*known.events[1:], *fresh.events, invalid])

    assert state_of(store, known.execution_id) == before
    assert store.execution(fresh.execution_id) is None
    assert store.events(fresh.execution_id) == []
    assert store.execution(invalid.execution_id) is None
    assert store.record([*known.events[1:], *fresh.events]) == 3 + len(fresh.events)


@pytest.mark.parametrize(
    ("kind", "node_id", "data"),
    [
        (EventType.EXECUTION_QUEUED, None, {"blueprint_name": "no id"}),
        (EventType.EXECUTION_QUEUED, None, {"blueprint_id": "", "blueprint_name": "x"}),
        (EventType.EXECUTION_SUCCEEDED, None, {"result": [1, 2]}),
        (EventType.NODE_STARTED, None, {"attempt": 1}),
        (EventType.NODE_STARTED, "a", {"attempt": "first"}),
        (EventType.NODE_FAILED, "a", {"error": "not an object"}),
    ],
)
def test_invalid_event_data_is_refused(
    store: SqlHistoryStore, kind: EventType, node_id: str | None, data: dict[str, Any]
) -> None:
    event = Script().add(kind, node_id, **data)

    with pytest.raises(InvalidEvent):
        check_event(event)
    with pytest.raises(InvalidEvent):
        store.record([event])
    assert store.execution(event.execution_id) is None


def test_event_data_that_is_not_json_is_refused(store: SqlHistoryStore) -> None:
    event = Script().add(EventType.NODE_PROGRESS, "a", progress=object())

    with pytest.raises(InvalidEvent, match="not JSON"):
        store.record([event])


# ---- listing ----------------------------------------------------------------------------------


def _listing_fixture(store: SqlHistoryStore) -> list[ExecutionRecord]:
    """120 executions, created three per second (ties broken by id), in four states."""
    batch: list[Event] = []
    for index in range(120):
        script = Script(execution_id=f"exec-{index:03d}", start=T0 + index // 3)
        script.queued(blueprint_id=f"bp-{index % 3}")
        if index % 4 in (0, 1, 2):
            script.add(EventType.EXECUTION_STARTED)
        if index % 4 == 0:
            script.ended(ExecutionStatus.SUCCEEDED)
        if index % 4 == 1:
            script.ended(ExecutionStatus.FAILED)
        batch += script.events
    rng = random.Random("listing")
    rng.shuffle(batch)
    store.record(batch)
    records = [store.execution(f"exec-{index:03d}") for index in range(120)]
    return sorted(
        (record for record in records if record is not None),
        key=lambda record: (record.created_at, record.id),
        reverse=True,
    )


def _walk(store: SqlHistoryStore, limit: int, **filters: Any) -> list[str]:
    """Every id of a listing, page by page."""
    seen: list[str] = []
    cursor = None
    while True:
        page = store.list_executions(limit=limit, cursor=cursor, **filters)
        assert len(page.items) <= limit
        seen += [item.id for item in page.items]
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"status": ExecutionStatus.SUCCEEDED},
        {"status": ExecutionStatus.QUEUED},
        {"blueprint_id": "bp-1"},
        {"status": ExecutionStatus.RUNNING, "blueprint_id": "bp-2"},
        {"blueprint_id": "nope"},
    ],
)
def test_listing_pages_newest_first_without_gaps_or_duplicates(
    store: SqlHistoryStore, filters: dict[str, Any]
) -> None:
    newest_first = _listing_fixture(store)
    expected = [
        record.id
        for record in newest_first
        if record.status == filters.get("status", record.status)
        and record.blueprint_id == filters.get("blueprint_id", record.blueprint_id)
    ]

    for limit in (7, 30, 200):
        assert _walk(store, limit, **filters) == expected


def test_listing_cursor_is_stable_while_executions_arrive(store: SqlHistoryStore) -> None:
    newest_first = _listing_fixture(store)
    first = store.list_executions(limit=10)
    store.record(ten_node_execution(start=T0 + 10_000).events)

    second = store.list_executions(limit=10, cursor=first.next_cursor)

    assert [item.id for item in first.items + second.items] == [r.id for r in newest_first[:20]]
    assert store.list_executions(limit=1).items[0].created_at == T0 + 10_001


def test_listing_refuses_bad_cursors_and_limits(store: SqlHistoryStore) -> None:
    for cursor in ("garbage!", "bm90IGpzb24", "WzFd", "WyJhIiwxXQ"):
        with pytest.raises(InvalidCursor):
            store.list_executions(cursor=cursor)
    for limit in (0, 1001):
        with pytest.raises(ValueError, match="limit"):
            store.list_executions(limit=limit)
    assert store.list_executions().items == []


# ---- pruning ----------------------------------------------------------------------------------


def test_prune_deletes_only_executions_finished_before_the_cutoff(store: SqlHistoryStore) -> None:
    old = ten_node_execution(start=T0)
    old_failed = Script(start=T0).queued().ended(ExecutionStatus.FAILED)
    recent = ten_node_execution(start=T0 + 5000)
    running = Script(start=T0).queued()
    running.add(EventType.EXECUTION_STARTED)
    running.node_ran("a")
    queued = Script(start=T0 - 1000).queued()
    for script in (old, old_failed, recent, running, queued):
        store.record(script.events)
    now = T0 + 5000 + 3600

    assert store.prune(older_than_s=3600, now=now) == 2

    for gone in (old, old_failed):
        assert state_of(store, gone.execution_id) == (None, [], [])
    for kept in (recent, running, queued):
        assert store.execution(kept.execution_id) is not None
        assert len(store.events(kept.execution_id)) == len(kept.events)
    assert len(store.node_runs(recent.execution_id)) == 10
    assert store.prune(older_than_s=3600, now=now) == 0
    assert store.prune(older_than_s=0) == 1


def test_a_large_batch_spanning_thousands_of_executions(store: SqlHistoryStore) -> None:
    batch = [
        Script(execution_id=f"big-{index:05d}").add(
            EventType.NODE_STARTED, f"n{index % 7}", attempt=1, worker="w", type="t"
        )
        for index in range(3000)
    ]

    assert store.record(batch) == 3000
    assert store.record(batch) == 0

    assert len(store.list_executions(status=ExecutionStatus.QUEUED, limit=1000).items) == 1000
    assert [run.status for run in store.node_runs("big-02999")] == [NodeStatus.RUNNING]


# ---- concurrency ------------------------------------------------------------------------------


def test_concurrent_overlapping_batches_store_each_event_once(store: SqlHistoryStore) -> None:
    scripts = [ten_node_execution(start=T0 + index) for index in range(6)]
    everything = [event for script in scripts for event in script.events]
    third = len(everything) // 3
    halves = [everything[: 2 * third], everything[third:]]
    counts = [0, 0]
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def recorder(index: int) -> None:
        rng = random.Random(index)
        events = list(halves[index])
        rng.shuffle(events)
        try:
            barrier.wait()
            for start in range(0, len(events), 4):
                counts[index] += store.record(events[start : start + 4])
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=recorder, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert sum(counts) == len(everything)
    for script in scripts:
        assert store.events(script.execution_id) == script.events
        execution, runs = derive(script.events)
        assert store.execution(script.execution_id) == execution
        assert store.node_runs(script.execution_id) == runs


# ---- size and opening -------------------------------------------------------------------------


def _stored_bytes(store: SqlHistoryStore) -> tuple[int, int]:
    """(bytes of stored rows, bytes of pages allocated) of the history tables. SQLite's rows
    include index entries; PostgreSQL's pages include indexes."""
    if store.engine.dialect.name == "sqlite":
        query = "SELECT sum(payload), sum(pgsize) FROM dbstat"
    else:
        query = """
            SELECT
              (SELECT coalesce(sum(pg_column_size(t.*)), 0) FROM executions t)
              + (SELECT coalesce(sum(pg_column_size(t.*)), 0) FROM node_runs t)
              + (SELECT coalesce(sum(pg_column_size(t.*)), 0) FROM events t),
              (SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c
               JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = current_schema() AND c.relkind = 'r')
        """
    with store.engine.connect() as conn:
        rows, pages = conn.execute(sa.text(query)).one()
    return int(rows), int(pages)


def test_a_ten_node_execution_stores_well_under_a_megabyte(store: SqlHistoryStore) -> None:
    executions = 20
    before = _stored_bytes(store)
    for index in range(executions):
        store.record(ten_node_execution(start=T0 + index).events)
    after = _stored_bytes(store)

    rows, pages = ((a - b) // executions for a, b in zip(after, before, strict=True))

    print(
        f"\n{store.engine.dialect.name}: one 10-node execution stores {rows} bytes of rows, "
        f"{pages} bytes of pages"
    )
    assert rows < 100_000
    assert pages < 100_000


def test_open_history_creates_the_folder_and_reopens(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "history.sqlite3"
    first = open_sql_history(f"sqlite:///{path}")
    script = ten_node_execution()
    first.record(script.events)
    with first.engine.connect() as conn:
        pragmas = [
            conn.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
        ]
    first.close()

    second = open_sql_history(f"sqlite:///{path}")

    assert pragmas == ["wal", 1, 1, 30_000]
    assert second.execution(script.execution_id) is not None
    with second.engine.connect() as conn:
        versions = conn.exec_driver_sql("SELECT version FROM schema_version").scalars().all()
    assert versions == [SCHEMA_VERSION]
    second.close()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_open_history_gives_an_in_memory_history_store(url: str) -> None:
    store: HistoryStore = open_history(url)
    script = ten_node_execution()

    assert store.record(script.events) == len(script.events)

    assert store.execution(script.execution_id) == derive(script.events)[0]
    store.close()


def test_the_sql_store_is_a_history_store(store: SqlHistoryStore) -> None:
    typed: HistoryStore = store
    assert typed.list_executions().next_cursor is None


def test_open_history_refuses_other_urls() -> None:
    with pytest.raises(HistoryError, match="unsupported"):
        open_history("mysql://localhost/x")


PROFILE_COLUMNS = (
    "queue_wait_ms", "cpu_ms", "peak_rss_bytes", "input_bytes", "output_bytes", "depends_on",
)  # fmt: skip


def test_a_database_from_before_profiles_gains_their_columns_and_keeps_its_runs(
    history_url: str,
) -> None:
    if history_url == "sqlite://":
        pytest.skip("an in-memory database does not outlive its store")
    old = open_sql_history(history_url)
    before = eventful_execution()
    old.record(before.events)
    with old.engine.begin() as conn:  # the node_runs table as schema version 2 made it
        for column in PROFILE_COLUMNS:
            conn.exec_driver_sql(f"ALTER TABLE node_runs DROP COLUMN {column}")
        conn.exec_driver_sql("UPDATE schema_version SET version = 2")
    old.close()

    store = open_sql_history(history_url)
    columns = {c["name"] for c in sa.inspect(store.engine).get_columns("node_runs")}
    assert set(PROFILE_COLUMNS) <= columns
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT version FROM schema_version").scalar() == SCHEMA_VERSION
    runs = {run.node_id: run for run in store.node_runs(before.execution_id)}
    assert runs["a"].status is NodeStatus.SUCCEEDED and runs["a"].cpu_ms is None
    after = eventful_execution()
    store.record(after.events)
    assert {run.node_id: run for run in store.node_runs(after.execution_id)}["a"].cpu_ms == 30
    store.close()
