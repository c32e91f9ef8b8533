"""Arguments every state script takes the same way: who to emit to, the fencing token, ids."""

from __future__ import annotations

import uuid

from storage import keys


def emitting(execution_id: str) -> list[str]:
    """The first ARGV of every emitting script: the events channel, the execution id."""
    return [keys.events_channel(execution_id), execution_id]


def token(attempt: int | None) -> str:
    """An attempt as a fencing token: '' for whichever attempt holds the node."""
    return "" if attempt is None else str(attempt)


def event_id() -> str:
    """A new event's id."""
    return str(uuid.uuid4())
