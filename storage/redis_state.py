"""The Redis StateStore: one script call to load a node, one to store its outcome.

Every state change emits its event in the same script (storage/lua/*.lua, loaded by
storage/scripts.py): `seq` from the execution's meta hash, XADD to the durable stream the
recorder reads, PUBLISH for live views. So an outcome's event is in Redis before the node task
acknowledges its message. The stream is not capped: trimming would drop events no recorder has
read yet; the recorder deletes what it has recorded.
"""

from __future__ import annotations

import json
from typing import Any

import redis

from conductor.model.plan import ExecutionPlan
from storage import keys
from storage.children import parent_handoff
from storage.concurrency import slot_arguments
from storage.event_data import queued_event, terminal_data
from storage.events import EventType
from storage.execution_meta import meta_fields
from storage.redis_control import RedisControl, emitting, event_id
from storage.redis_live import RedisLiveIndex, text
from storage.redis_reads import RedisReads
from storage.redis_waits import RedisWaits
from storage.scripts import Scripts
from storage.state import (
    LEASE_MS,
    Completion,
    ExecutionExists,
    ExecutionStatus,
    Expansion,
    Heartbeat,
    NodeLoad,
    NodeStatus,
    now_ms,
)

DEFAULT_TTL_S = 7 * 24 * 3600

_OUTCOME_EVENTS = {
    NodeStatus.SUCCEEDED: EventType.NODE_SUCCEEDED,
    NodeStatus.SKIPPED: EventType.NODE_SKIPPED,
    NodeStatus.FAILED: EventType.NODE_FAILED,
}


class RedisStateStore(RedisLiveIndex, RedisReads, RedisControl, RedisWaits):
    """Execution state in Redis; every key of an execution expires after `ttl_s`."""

    def __init__(
        self,
        client: redis.Redis,
        ttl_s: int = DEFAULT_TTL_S,
        lease_ms: int = LEASE_MS,
        replicas: int = 0,  # a creation waits for them (a primary behind Sentinels)
    ) -> None:
        self.client = client
        self.ttl_s = ttl_s
        self.lease_ms = lease_ms
        self.scripts = Scripts(client, replicas)

    def create(self, plan: ExecutionPlan) -> bool:
        """Store meta and plan and emit execution.queued (seq 1), all in one script; an
        execution id that exists already raises ExecutionExists (exactly one creator wins).
        With a concurrency key, the same script takes a slot or joins the key's line (False)."""
        execution_id = plan.execution_id
        specs = {key: node.model_dump_json() for key, node in plan.nodes.items()}
        slot_keys, slot_args = slot_arguments(plan)
        created = self.scripts(
            "create",
            [
                keys.meta(execution_id),
                keys.plan(execution_id),
                keys.EVENTS_STREAM,
                keys.events_log(execution_id),
                keys.LIVE_EXECUTIONS,
                *slot_keys,
            ],
            [
                *emitting(execution_id),
                self.ttl_s,
                queued_event(plan).model_dump_json(),
                json.dumps({**meta_fields(plan), "seq": "1"}),
                json.dumps(specs),
                *slot_args,
            ],
        )
        if not created:
            raise ExecutionExists(execution_id)
        return int(created) == 1

    def load(
        self, execution_id: str, key: str, worker: str, phase: str | None = None
    ) -> NodeLoad | None:
        """One EVALSHA: spec, execution state, attempt number and upstream outputs."""
        reply = self.scripts(
            "load",
            [
                keys.meta(execution_id),
                keys.plan(execution_id),
                keys.nodes(execution_id),
                keys.outputs(execution_id),
                keys.EVENTS_STREAM,
                keys.events_log(execution_id),
                keys.LIVE_EXECUTIONS,
            ],
            [
                *emitting(execution_id),
                key,
                now_ms(),
                worker,
                event_id(),
                event_id(),
                self.lease_ms,
                phase or "",
            ],
        )
        if not reply:
            return None
        spec, status, node_status, attempt, total, deadline, inputs, variables, flat = reply[:9]
        return NodeLoad(
            spec=text(spec),
            execution_status=ExecutionStatus(text(status)),
            node_status=NodeStatus(text(node_status)),
            attempt=int(attempt),
            total=int(total),
            deadline_ms=int(deadline) if deadline else None,
            inputs=json.loads(inputs),
            variables=json.loads(variables),
            upstream={text(flat[i]): text(flat[i + 1]) for i in range(0, len(flat), 3)},
            upstream_finished_ms={text(flat[i]): int(flat[i + 2]) for i in range(0, len(flat), 3)},
            busy=bool(reply[9]),
            tries=int(reply[10]),
            wrong_phase=bool(reply[11]),
        )

    def complete(
        self,
        execution_id: str,
        key: str,
        output: str,
        status: NodeStatus,
        error: dict[str, Any] | None = None,
        *,
        cached: bool = False,
        attempt: int | None = None,
        reason: str | None = None,
        profile: dict[str, Any] | None = None,
    ) -> Completion:
        """One script: output, status, the finished set, the node's event (node.cached for an
        output reused from the cache). With `attempt`, only while that attempt holds the node."""
        event_type = EventType.NODE_CACHED if cached else _OUTCOME_EVENTS[status]
        reply = self.scripts(
            "complete",
            [
                keys.meta(execution_id),
                keys.nodes(execution_id),
                keys.outputs(execution_id),
                keys.done(execution_id),
                keys.EVENTS_STREAM,
                keys.events_log(execution_id),
                keys.LIVE_EXECUTIONS,
            ],
            [
                *emitting(execution_id),
                key,
                output,
                status.value,
                now_ms(),
                event_id(),
                event_type.value,
                json.dumps(error) if error else "",
                _token(attempt),
                reason or "",
                json.dumps(profile) if profile else "",
            ],
        )
        return Completion(reply)

    def expand(self, execution_id: str, expansion: Expansion, *, attempt: int) -> bool:
        """One script: the items' node specs and virtual outputs, the loop's new spec, and the
        larger node total; False (nothing written) when `attempt` no longer holds the loop."""
        specs = {node.key: node.model_dump_json() for node in expansion.nodes}
        specs[expansion.loop.key] = expansion.loop.model_dump_json()
        expanded = self.scripts(
            "expand",
            [
                keys.meta(execution_id),
                keys.plan(execution_id),
                keys.outputs(execution_id),
                keys.nodes(execution_id),
            ],
            [
                expansion.loop.key,
                attempt,
                len(expansion.nodes),
                json.dumps(specs),
                json.dumps(expansion.item_outputs),
            ],
        )
        return bool(expanded)

    def fail(
        self,
        execution_id: str,
        key: str,
        error: dict[str, Any],
        *,
        attempt: int | None = None,
        profile: dict[str, Any] | None = None,
    ) -> bool:
        """Record the node's failure and emit node.failed; False if the node has an outcome,
        `attempt` no longer holds it, or the execution is over."""
        return self._set_node(
            execution_id,
            key,
            (NodeStatus.FAILED, EventType.NODE_FAILED),
            error,
            "",
            attempt=attempt,
            profile=profile,
        )

    def retry_later(
        self,
        execution_id: str,
        key: str,
        error: dict[str, Any],
        retry_in_s: float = 0.0,
        *,
        attempt: int | None = None,
    ) -> bool:
        """Record a failed attempt before its retry and emit node.retrying (as `fail`)."""
        change = (NodeStatus.PENDING, EventType.NODE_RETRYING)
        return self._set_node(execution_id, key, change, error, retry_in_s, attempt=attempt)

    def _set_node(
        self,
        execution_id: str,
        key: str,
        change: tuple[NodeStatus, EventType],
        error: dict[str, Any],
        retry_in_s: float | str,
        *,
        attempt: int | None,
        profile: dict[str, Any] | None = None,
    ) -> bool:
        status, event = change
        stored = self.scripts(
            "set_node",
            [
                keys.meta(execution_id),
                keys.nodes(execution_id),
                keys.EVENTS_STREAM,
                keys.events_log(execution_id),
            ],
            [
                *emitting(execution_id),
                key,
                status.value,
                now_ms(),
                event_id(),
                event.value,
                json.dumps(error),
                retry_in_s,
                _token(attempt),
                json.dumps(profile) if profile else "",
            ],
        )
        return bool(stored)

    def progress(self, execution_id: str, key: str, fraction: float, message: str) -> None:
        """Emit node.progress (while the execution is live)."""
        self.scripts(
            "progress",
            [keys.meta(execution_id), keys.EVENTS_STREAM, keys.events_log(execution_id)],
            [*emitting(execution_id), key, now_ms(), event_id(), fraction, message],
        )

    def finish(
        self,
        execution_id: str,
        status: ExecutionStatus,
        result: str,
        summary: dict[str, Any] | None = None,
    ) -> bool:
        """Set the result once and emit the terminal event (a failed or cancelled execution's
        unfinished nodes end cancelled in the same script); False if already over."""
        head = {
            "id": event_id(),
            "execution_id": execution_id,
            "type": f"execution.{status.value}",
            "node_id": None,
            "ts": now_ms() / 1000,
        }
        data = {**terminal_data(status, result, summary)}
        del data["cancelled"]  # the script lists them, after it ends them
        data_text = json.dumps(data, separators=(",", ":"))
        # a child's parent link never changes once created: read it before the script
        found = self.client.hmget(keys.meta(execution_id), "parent_id", "parent_node")
        parent_id, parent_node = (text(value) if value else None for value in found)
        handoff_keys, handoff_args = parent_handoff(
            execution_id, (parent_id, parent_node), status.value
        )
        won = self.scripts(
            "finish",
            [
                keys.result(execution_id),
                keys.meta(execution_id),
                keys.EVENTS_STREAM,
                keys.events_log(execution_id),
                keys.LIVE_EXECUTIONS,
                keys.plan(execution_id),
                keys.nodes(execution_id),
                *handoff_keys,
            ],
            [
                *emitting(execution_id),
                result,
                status.value,
                now_ms(),
                self.ttl_s,
                json.dumps(head, separators=(",", ":"))[:-1] + ',"seq":',
                ',"data":' + data_text[:-1] + ',"cancelled":',
                keys.done_channel(execution_id),
                *handoff_args,
            ],
        )
        return bool(won)

    def heartbeat(self, execution_id: str, key: str, attempt: int) -> Heartbeat:
        """Renew the attempt's lease; say whether it still holds the node, and the execution's
        status (None when the execution is gone)."""
        status, holds = self.scripts(
            "heartbeat",
            [keys.meta(execution_id), keys.nodes(execution_id), keys.LIVE_EXECUTIONS],
            [key, attempt, self.lease_ms, execution_id],
        )
        found = text(status)
        return Heartbeat(ExecutionStatus(found) if found else None, bool(holds))


def _token(attempt: int | None) -> str:
    return "" if attempt is None else str(attempt)
