"""A node run's profile (workers/profile.py) and the critical path (storage/critical_path.py)."""

from __future__ import annotations

import time

from conductor.cli.history import describe
from storage.blobs import stored_bytes
from storage.critical_path import critical_path
from storage.history import ExecutionRecord, NodeRunRecord
from storage.history_state import profile_fields
from storage.state import ExecutionStatus, NodeStatus
from workers.profile import SENT_HEADER, Meter, queue_wait_ms, sent_stamp


def test_a_message_is_stamped_and_its_wait_counts_from_then_or_its_eta() -> None:
    headers: dict[str, object] = {}
    sent_stamp(headers=headers)
    sent = headers[SENT_HEADER]
    assert isinstance(sent, int) and abs(sent - time.time() * 1000) < 1000
    sent_stamp(headers=None)  # nothing to stamp
    assert queue_wait_ms(1000, None, 1500) == 500
    assert queue_wait_ms(1000, "1970-01-01T00:00:01.400+00:00", 1500) == 100
    assert queue_wait_ms(1000, "not a time", 1500) == 500
    assert queue_wait_ms(2000, None, 1500) == 0  # another host's clock ahead: never negative
    assert queue_wait_ms(None, None, 1500) is None


def test_the_meter_counts_cpu_memory_and_bytes() -> None:
    meter = Meter(queue_wait_ms=3, depends_on=["a"])
    meter.count_inputs({"a": '{"x":1}', "b": '{"$blob": "f", "bytes": 5000}'}, {})
    deadline = time.thread_time() + 0.2
    while time.thread_time() < deadline:
        pass
    block = b"x" * (64 << 20)  # written, so resident
    profile = meter.profile('{"result":1}')
    del block
    assert profile["queue_wait_ms"] == 3 and profile["depends_on"] == ["a"]
    assert profile["input_bytes"] == 7 + 5000 and profile["output_bytes"] == 12
    assert 150 <= profile["cpu_ms"] <= 1000
    assert profile["peak_rss_bytes"] >= 64 << 20
    source = Meter()
    source.count_inputs({}, {"n": 1})
    measured = source.profile(None)
    assert measured == {
        "input_bytes": 7,
        "cpu_ms": measured["cpu_ms"],
        "peak_rss_bytes": measured["peak_rss_bytes"],
    }  # no depends_on, queue wait or output (one reading: CPU time moves between two)


def test_stored_bytes_reads_a_blob_reference() -> None:
    assert stored_bytes('{"$blob": "x", "bytes": 9}') == 9
    assert stored_bytes('"é"') == 4


def run(node_id: str, finished: float | None, after: list[str] | None = None) -> NodeRunRecord:
    return NodeRunRecord(
        execution_id="e",
        node_id=node_id,
        status=NodeStatus.SUCCEEDED if finished else NodeStatus.PENDING,
        started_at=None if finished is None else finished - 1,
        finished_at=finished,
        depends_on=after,
        cpu_ms=5,
        peak_rss_bytes=3 << 20,
        input_bytes=10,
        output_bytes=2048,
    )


def test_the_critical_path_follows_the_last_arrival_back() -> None:
    runs = [
        run("a", 1.0),
        run("fast", 2.0, ["a"]),
        run("slow", 5.0, ["a"]),
        run("d", 6.0, ["fast", "slow"]),
        run("never", None, ["d"]),
    ]
    assert critical_path(runs) == ["a", "slow", "d"]
    assert critical_path([run("x", None)]) == []
    record = ExecutionRecord(
        id="e",
        blueprint_id="b",
        blueprint_name="B",
        status=ExecutionStatus.SUCCEEDED,
        created_at=0.0,
        last_seq=1,
    )
    lines = describe(record, runs, critical_path(runs))
    assert [line.split()[1] for line in lines if line.startswith("* ")] == ["a", "slow", "d"]
    assert lines[-1] == "critical path: a -> slow -> d"
    assert "3.0M" in lines[3] and "2.0K" in lines[3] and "10B" in lines[3]
    assert describe(record, [], [])[-1] == "critical path: -"


def test_profile_fields_keep_only_usable_values() -> None:
    fields = profile_fields({"cpu_ms": 4, "peak_rss_bytes": True, "depends_on": {}, "new": 1})
    assert fields["cpu_ms"] == 4 and fields["peak_rss_bytes"] is None
    assert fields["depends_on"] is None and "new" not in fields
    assert profile_fields(None)["queue_wait_ms"] is None
