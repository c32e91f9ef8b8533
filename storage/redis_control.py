"""Control changes of the Redis state store: cancel, retry (reopen), pause and resume
(transition), and a debugging step; each one script that also emits its event."""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection

from storage import keys
from storage.events import EventType
from storage.scripts import Scripts
from storage.state import ExecutionStatus, StateChange, now_ms


def emitting(execution_id: str) -> list[str]:
    """The first ARGV of every emitting script: the events channel, the execution id."""
    return [keys.events_channel(execution_id), execution_id]


def event_id() -> str:
    """A new event's id."""
    return str(uuid.uuid4())


class RedisControl:
    """The control scripts; the store supplies `scripts` and `ttl_s`."""

    scripts: Scripts
    ttl_s: int

    def cancel(self, execution_id: str) -> StateChange:
        """Mark a live or paused execution and its unfinished nodes cancelled (finalize then
        ends it), whatever its nodes' state."""
        reply = self.scripts(
            "cancel",
            [
                keys.meta(execution_id),
                keys.plan(execution_id),
                keys.nodes(execution_id),
            ],
            [now_ms()],
        )
        return StateChange.of_reply(reply)

    def reopen(self, execution_id: str, node_keys: Collection[str]) -> StateChange:
        """Make a failed or cancelled execution running again with `node_keys` back to
        pending (emits execution.resumed with `retry: true`)."""
        reply = self.scripts(
            "reopen",
            [
                keys.meta(execution_id),
                keys.nodes(execution_id),
                keys.outputs(execution_id),
                keys.done(execution_id),
                keys.result(execution_id),
                keys.EVENTS_STREAM,
                keys.events_log(execution_id),
                keys.LIVE_EXECUTIONS,
                keys.plan(execution_id),
                keys.signals(execution_id),
            ],
            [
                *emitting(execution_id),
                now_ms(),
                event_id(),
                self.ttl_s,
                json.dumps(sorted(node_keys)),
            ],
        )
        return StateChange.of_reply(reply)

    def transition(
        self,
        execution_id: str,
        allowed: frozenset[ExecutionStatus],
        target: ExecutionStatus,
        event: EventType,
    ) -> StateChange:
        """Move to `target` (emitting `event`) if the status is one of `allowed`."""
        reply = self.scripts(
            "transition",
            [
                keys.meta(execution_id),
                keys.EVENTS_STREAM,
                keys.events_log(execution_id),
                keys.LIVE_EXECUTIONS,
            ],
            [
                *emitting(execution_id),
                target.value,
                now_ms(),
                event_id(),
                event.value,
                ",".join(sorted(s.value for s in allowed)),
            ],
        )
        return StateChange.of_reply(reply)

    def step(self, execution_id: str, chosen: Collection[str]) -> StateChange:
        """One script: paused -> running with the step's nodes in meta `step`."""
        reply = self.scripts(
            "step",
            [
                keys.meta(execution_id),
                keys.EVENTS_STREAM,
                keys.events_log(execution_id),
                keys.LIVE_EXECUTIONS,
            ],
            [*emitting(execution_id), now_ms(), event_id(), json.dumps(sorted(chosen))],
        )
        return StateChange.of_reply(reply)
