"""An execution's events for a viewer: history first, then live, with no gap and no repeat."""

from __future__ import annotations

import json
from collections.abc import Iterator

import redis

from storage import keys
from storage.events import Event
from storage.history import HistoryStore
from storage.state import StateStore

HEARTBEAT_S = 15.0


class ExecutionNotFound(LookupError):
    """Neither Redis nor the history store knows the execution."""


def follow_events(
    client: redis.Redis,
    state: StateStore,
    history: HistoryStore | None,
    execution_id: str,
    *,
    after_seq: int = 0,
    heartbeat_s: float = HEARTBEAT_S,
) -> Iterator[Event | None]:
    """Events with seq > `after_seq` until the terminal one; None is a heartbeat (nothing
    happened for `heartbeat_s`). Subscribes before reading the backlog, so nothing falls
    between the two; a jump in the live seq is filled from the execution's event log."""
    pubsub = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
    pubsub.subscribe(keys.events_channel(execution_id))
    try:
        backlog = state.events(execution_id, after_seq)
        if backlog is None:  # gone from Redis: what the history store has is all there is
            yield from _from_history(history, execution_id, after_seq)
            return
        last = after_seq
        for event in backlog:
            yield event
            last = event.seq
            if event.type.is_terminal and event is backlog[-1]:
                return  # (an earlier terminal event was followed by a retry)
        if not backlog and state.result(execution_id) is not None:
            return  # reconnected after the terminal event: nothing more will come
        yield from _live(pubsub, state, execution_id, last, heartbeat_s)
    finally:
        pubsub.close()


def _live(
    pubsub: redis.client.PubSub, state: StateStore, execution_id: str, last: int, heartbeat_s: float
) -> Iterator[Event | None]:
    while True:
        message = pubsub.get_message(timeout=heartbeat_s)
        if message is None:
            yield None
            continue
        event = Event.model_validate(json.loads(message["data"]))
        pending = [event]
        if event.seq > last + 1:  # missed some (a slow subscriber): read them from the log
            pending = [e for e in state.events(execution_id, last) or [] if e.seq > last]
        for item in pending:
            if item.seq <= last:
                continue
            yield item
            last = item.seq
            if item.type.is_terminal:
                return


def _from_history(
    history: HistoryStore | None, execution_id: str, after_seq: int
) -> Iterator[Event]:
    if history is None or history.execution(execution_id) is None:
        raise ExecutionNotFound(execution_id)
    yield from history.events(execution_id, after_seq)
