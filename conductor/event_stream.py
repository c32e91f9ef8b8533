"""An execution's events for a viewer: history first, then live, with no gap and no repeat."""

from __future__ import annotations

import json
from collections.abc import Iterator

from storage.event_source import EventsMissed, EventSource, Subscription
from storage.events import Event
from storage.history import HistoryStore
from storage.state import StateStore

HEARTBEAT_S = 15.0


class ExecutionNotFound(LookupError):
    """Neither Redis nor the history store knows the execution."""


def follow_events(
    source: EventSource,
    state: StateStore,
    history: HistoryStore | None,
    execution_id: str,
    *,
    after_seq: int = 0,
    heartbeat_s: float = HEARTBEAT_S,
) -> Iterator[Event | None]:
    """Events with seq > `after_seq` until the terminal one; None is a heartbeat (nothing
    happened for `heartbeat_s`). Subscribes, then reads the backlog, so nothing falls between
    the two; a jump in the live seq is filled from the execution's event log. Both happen on
    this call, so a failure (Redis away, an unknown execution) raises here, before a viewer
    was sent anything."""
    subscription = source.subscribe(execution_id)
    try:
        backlog = state.events(execution_id, after_seq)
        if backlog is None:  # gone from Redis: what the history store has is all there is
            subscription.close()
            return _from_history(history, execution_id, after_seq)
        finished = not backlog and state.result(execution_id) is not None
    except BaseException:
        subscription.close()
        raise
    if finished:  # reconnected after the terminal event: nothing more will come
        subscription.close()
        return iter(backlog)
    return _stream(
        subscription, state, execution_id, backlog, after_seq=after_seq, heartbeat_s=heartbeat_s
    )


def _stream(
    subscription: Subscription,
    state: StateStore,
    execution_id: str,
    backlog: list[Event],
    *,
    after_seq: int,
    heartbeat_s: float,
) -> Iterator[Event | None]:
    try:
        last = after_seq
        for event in backlog:
            yield event
            last = event.seq
            if event.type.is_terminal and event is backlog[-1]:
                return  # (an earlier terminal event was followed by a retry)
        yield from _live(subscription, state, execution_id, last, heartbeat_s)
    finally:
        subscription.close()


def _live(
    subscription: Subscription, state: StateStore, execution_id: str, last: int, heartbeat_s: float
) -> Iterator[Event | None]:
    while True:
        pending = _next_events(subscription, state, execution_id, last, heartbeat_s)
        if pending is None:
            yield None
            continue
        for item in pending:
            if item.seq <= last:
                continue
            yield item
            last = item.seq
            if item.type.is_terminal:
                return


def _next_events(
    subscription: Subscription, state: StateStore, execution_id: str, last: int, heartbeat_s: float
) -> list[Event] | None:
    """The next live event, or what the log holds after `last` when some were missed (a slow
    subscriber, a subscription made again); None when nothing came for `heartbeat_s`."""
    try:
        payload = subscription.get(heartbeat_s)
    except EventsMissed:
        return _logged_after(state, execution_id, last)
    if payload is None:
        return None
    event = Event.model_validate(json.loads(payload))
    if event.seq > last + 1:
        return _logged_after(state, execution_id, last)
    return [event]


def _logged_after(state: StateStore, execution_id: str, last: int) -> list[Event]:
    return [event for event in state.events(execution_id, last) or [] if event.seq > last]


def _from_history(
    history: HistoryStore | None, execution_id: str, after_seq: int
) -> Iterator[Event]:
    if history is None or history.execution(execution_id) is None:
        raise ExecutionNotFound(execution_id)
    return iter(history.events(execution_id, after_seq))
