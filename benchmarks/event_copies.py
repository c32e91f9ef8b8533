"""Copies of one recorded execution's events, added to the events stream as emitters add them."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

import redis

from storage import keys
from storage.events import Event

FILL_PIPELINE = 1000  # XADDs per pipeline


def copy_execution(template: Sequence[Event], now: float) -> list[Event]:
    """The template's events under a new execution id and new event ids, moved to `now`."""
    old, new = template[0].execution_id, str(uuid.uuid4())
    shift = now - template[0].ts
    # Through the JSON text: the terminal event's result object names its execution too.
    copies = [
        Event.model_validate_json(event.model_dump_json().replace(old, new)) for event in template
    ]
    return [
        event.model_copy(update={"id": str(uuid.uuid4()), "ts": event.ts + shift})
        for event in copies
    ]


def prefill(client: redis.Redis, template: Sequence[Event], executions: int) -> int:
    """XADD the events of `executions` copies of the template, one execution after another,
    in pipelines; return how many events."""
    pipe = client.pipeline(transaction=False)
    added, now = 0, time.time()
    for _ in range(executions):
        for event in copy_execution(template, now):
            entry: dict[Any, Any] = {"event": event.model_dump_json()}
            pipe.xadd(keys.EVENTS_STREAM, entry)
            added += 1
            if added % FILL_PIPELINE == 0:
                pipe.execute()
    pipe.execute()
    return added
