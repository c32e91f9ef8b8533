"""What the recorder keeps for replay, on the in-memory twins (no Redis)."""

from __future__ import annotations

import redis

from conductor.recorder import Recorder
from storage.blueprint_archive import MemoryBlueprintArchive
from storage.events import Event, EventType
from storage.history import open_history
from storage.node_outputs import MemoryNodeOutputs


def _events(execution_id: str, digest: str) -> list[Event]:
    def event(seq: int, kind: EventType, **data: object) -> Event:
        return Event(
            id=f"{execution_id}-{seq}",
            execution_id=execution_id,
            seq=seq,
            type=kind,
            ts=float(seq),
            data=data,
        )

    return [
        event(1, EventType.EXECUTION_QUEUED, blueprint_id="bp", blueprint_name="BP",
              inputs={}, nodes=1, blueprint_hash=digest),
        event(2, EventType.EXECUTION_SUCCEEDED, status="succeeded", error=None,
              duration_ms=1, result={}, cancelled=[]),
    ]  # fmt: skip


def test_the_recorder_copies_blueprints_and_outputs_and_keeps_them_when_redis_lost_them() -> None:
    history = open_history("sqlite://")
    archive, outputs = MemoryBlueprintArchive(), MemoryNodeOutputs()
    digest = archive.put('{"id": "bp"}')
    outputs.stored["e1"] = {"a": '{"result": 1}'}
    # never connects: the stream is not read here
    recorder = Recorder(redis.Redis(), history, blueprints=archive, outputs=outputs)
    events = _events("e1", digest)
    history.record(events)

    recorder._keep_for_replay(events)

    assert history.blueprint(digest) == '{"id": "bp"}'
    assert history.node_outputs("e1") == {"a": '{"result": 1}'}
    outputs.stored.clear()  # Redis expired them before a second delivery of the batch
    recorder._keep_for_replay(events)
    assert history.node_outputs("e1") == {"a": '{"result": 1}'}
    history.close()
