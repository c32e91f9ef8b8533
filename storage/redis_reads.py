"""Reads of the Redis state store (snapshots, the stored plan, events, the result) and its
plain writes (the output cache, the dispatch mark): RedisStateStore's part with no script."""

from __future__ import annotations

import redis

from storage import keys
from storage.events import Event
from storage.execution_meta import plan_from_fields
from storage.redis_live import text
from storage.state import ExecutionStatus, FinishedNodes, Snapshot, StoredPlan, node_record
from storage.statuses import now_ms


class RedisReads:
    """Pipelines over one execution's keys (RedisStateStore's base)."""

    client: redis.Redis

    def events(self, execution_id: str, after_seq: int = 0) -> list[Event] | None:
        """The execution's events with seq > after_seq; None when Redis no longer has it."""
        texts = self.client.lrange(keys.events_log(execution_id), after_seq, -1)
        if not texts and not self.client.exists(keys.meta(execution_id)):
            return None
        return [Event.model_validate_json(line) for line in texts]

    def cached_output(self, digest: str) -> str | None:
        """A node output cached under `digest`, if it has not expired."""
        value = self.client.get(keys.node_cache(digest))
        return None if value is None else text(value)

    def cache_output(self, digest: str, output: str, ttl_s: int) -> None:
        """Keep a node output for `ttl_s` seconds."""
        self.client.set(keys.node_cache(digest), output, ex=ttl_s)

    def mark_dispatched(self, execution_id: str) -> None:
        """Note that the execution's canvas reached the broker."""
        self.client.hset(keys.meta(execution_id), "dispatched_ms", now_ms())

    def result(self, execution_id: str) -> str | None:
        """The final result, if any."""
        value = self.client.get(keys.result(execution_id))
        return None if value is None else text(value)

    def snapshot(self, execution_id: str, sinks: list[str]) -> Snapshot:
        """Meta, node records and sink outputs in one pipeline."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(keys.meta(execution_id))
        pipe.hkeys(keys.plan(execution_id))
        pipe.hgetall(keys.nodes(execution_id))
        if sinks:
            pipe.hmget(keys.outputs(execution_id), sinks)
        replies = pipe.execute()
        meta = {text(k): text(v) for k, v in replies[0].items()}
        fields = {text(k): text(v) for k, v in replies[2].items()}
        outs = replies[3] if sinks else []
        return Snapshot(
            meta=meta,
            nodes={text(k): node_record(text(k), fields) for k in replies[1]},
            sink_outputs={sink: text(out) for sink, out in zip(sinks, outs, strict=True) if out},
        )

    def stored_plan(self, execution_id: str) -> StoredPlan | None:
        """Meta, plan and finished set in one pipeline."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(keys.meta(execution_id))
        pipe.hgetall(keys.plan(execution_id))
        pipe.smembers(keys.done(execution_id))
        meta, specs, done = pipe.execute()
        if not meta or not specs:
            return None
        plan = plan_from_fields(
            execution_id,
            {text(k): text(v) for k, v in meta.items()},
            {text(k): text(v) for k, v in specs.items()},
        )
        return StoredPlan(plan, frozenset(text(key) for key in done))

    def finished_nodes(self, execution_id: str) -> FinishedNodes | None:
        """Status, plan size and the finished set in one pipeline (no node record read)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hget(keys.meta(execution_id), "status")
        pipe.hlen(keys.plan(execution_id))
        pipe.smembers(keys.done(execution_id))
        status, planned, done = pipe.execute()
        if status is None or not planned:
            return None
        finished = frozenset(text(key) for key in done)
        return FinishedNodes(ExecutionStatus(text(status)), int(planned), finished)
