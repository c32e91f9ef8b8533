"""`conductor run` says how to send the signal a parked node waits for (conductor/signal_hint.py)."""

from __future__ import annotations

from typing import Any

from conductor.model.loader import load_blueprint_text
from conductor.signal_hint import SignalHint, waits_for_signals
from storage.events import Event, EventType

NESTED = """
id: n
name: N
nodes:
  - id: g
    type: group
    nodes: [{id: approve, type: wait-for-signal, parameters: {name: go}}]
"""


def event(kind: EventType, node: str | None, data: dict[str, Any], seq: int) -> Event:
    return Event(id=str(seq), execution_id="x", seq=seq, type=kind, node_id=node, ts=0.0, data=data)


def test_a_parked_node_is_shown_once_with_the_command_and_events_go_on() -> None:
    lines: list[str] = []
    passed: list[Event] = []
    hint = SignalHint("x", lines.append, "redis://127.0.0.1:7/0", passed.append)
    waiting = {"waiting": {"signal": "go", "wake_ms": 1}, "progress": 0, "message": "w"}
    events = [
        event(EventType.NODE_STARTED, "a", {"attempt": 1}, 1),
        event(EventType.NODE_PROGRESS, "a", waiting, 2),
        event(EventType.NODE_PROGRESS, "a", waiting, 3),  # parked again after a re-send
        event(EventType.NODE_PROGRESS, "d", {"waiting": {"signal": None, "wake_ms": 1}}, 4),
    ]
    for each in events:
        hint(each)
    assert lines == [
        "a waits for signal 'go': send it with "
        "CONDUCTOR_REDIS_URL=redis://127.0.0.1:7/0 conductor signal x go --data JSON"
    ]
    assert passed == events


def test_only_blueprints_with_a_wait_for_signal_node_are_watched() -> None:
    assert waits_for_signals(load_blueprint_text(NESTED).nodes)
    plain = "id: p\nname: P\nnodes: [{id: a, type: delay, parameters: {ms: 1}}]\n"
    assert not waits_for_signals(load_blueprint_text(plain).nodes)
