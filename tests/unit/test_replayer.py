"""The replayer's refusals, decided from history before anything is stored (no Redis)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from conductor.dispatch import Dispatcher, blueprint_text
from conductor.model.admission import Admission
from conductor.model.loader import load_blueprint_text
from conductor.model.problems import InvalidBlueprint
from conductor.model.settings import Settings
from conductor.replay import (
    ExecutionUnknown,
    NotFinal,
    NotReplayable,
    Replayer,
    UnknownNode,
    recorded_admission,
)
from nodes.registry import default_registry
from storage.blobs import FilesystemBlobStore
from storage.blueprint_archive import blueprint_digest
from storage.events import Event, EventType
from storage.history import HistoryStore, open_history
from storage.memory_state import MemoryStateStore
from workers.app import create_app
from workers.stores import Stores

GOOD = "id: bp\nname: BP\nnodes:\n  - {id: a, type: delay}\n  - {id: b, type: delay}\n"


@pytest.fixture
def history() -> Iterator[HistoryStore]:
    opened = open_history("sqlite://")
    yield opened
    opened.close()


@pytest.fixture
def replayer(history: HistoryStore, tmp_path: Path) -> Replayer:
    settings = Settings.from_env({"CONDUCTOR_REDIS_URL": "redis://127.0.0.1:1"})
    stores = Stores(state=MemoryStateStore(), blobs=FilesystemBlobStore(tmp_path))
    # the app never sends here: every case is refused before dispatch
    return Replayer(history, Dispatcher(create_app(settings), stores, default_registry()))


def _recorded(history: HistoryStore, execution_id: str, text: str, *, ended: bool) -> None:
    digest = blueprint_digest(text)
    events = [
        Event(id=f"{execution_id}-1", execution_id=execution_id, seq=1,
              type=EventType.EXECUTION_QUEUED, ts=1.0,
              data={"blueprint_id": "bp", "blueprint_name": "BP", "inputs": {}, "nodes": 2,
                    "blueprint_hash": digest}),
    ]  # fmt: skip
    if ended:
        events.append(
            Event(id=f"{execution_id}-2", execution_id=execution_id, seq=2,
                  type=EventType.EXECUTION_FAILED, ts=2.0,
                  data={"status": "failed", "error": None, "duration_ms": 1, "result": {},
                        "cancelled": []})
        )  # fmt: skip
    history.record(events)
    history.keep_for_replay({digest: text}, {})


def _text(yaml_text: str) -> str:
    return blueprint_text(load_blueprint_text(yaml_text))


def test_refusals_name_what_is_wrong(history: HistoryStore, replayer: Replayer) -> None:
    _recorded(history, "live", _text(GOOD), ended=False)
    _recorded(history, "done", _text(GOOD), ended=True)
    broken = json.loads(_text(GOOD))
    broken["nodes"][1]["type"] = "no-such-type"
    _recorded(history, "gone-type", json.dumps(broken), ended=True)

    with pytest.raises(ExecutionUnknown, match="'nope'"):
        replayer.replay("nope")
    with pytest.raises(NotFinal, match="queued"):
        replayer.replay("live")
    with pytest.raises(UnknownNode, match=r"from_node: .* no node 'zz' .*a, b"):
        replayer.replay("done", from_node="zz")
    with pytest.raises(NotReplayable, match="no-such-type"):
        replayer.replay("gone-type")
    with pytest.raises(InvalidBlueprint):
        replayer.replay("done", inputs={"n": float("nan")})


def test_a_replay_keeps_the_priority_and_concurrency_key_of_the_original() -> None:
    def queued(**data: object) -> list[Event]:
        return [Event(id="q", execution_id="e", seq=1, type=EventType.EXECUTION_QUEUED, ts=1.0,
                      data={"blueprint_id": "bp", "blueprint_name": "BP", "inputs": {},
                            "nodes": 1, **data})]  # fmt: skip

    kept = recorded_admission(queued(priority=8, concurrency_key="tenant-1"))
    assert (kept.priority, kept.concurrency_key) == (8, "tenant-1")
    assert recorded_admission(queued()) == Admission()
    assert recorded_admission([]) == Admission()
    assert recorded_admission(queued(priority=42)) == Admission()
