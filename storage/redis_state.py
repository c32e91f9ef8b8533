"""The Redis StateStore: one script call to load a node, one pipeline to store its output."""

from __future__ import annotations

import json
import uuid
from typing import Any

import redis

from conductor.plan import ExecutionPlan
from storage import keys
from storage.state import (
    ExecutionStatus,
    Expansion,
    NodeLoad,
    NodeStatus,
    Snapshot,
    StoredPlan,
    meta_fields,
    node_record,
    now_ms,
    plan_from_fields,
)

DEFAULT_TTL_S = 7 * 24 * 3600

# KEYS: meta, plan, nodes, outputs. ARGV: node key, now (ms), worker name.
_LOAD = """
local spec = redis.call('HGET', KEYS[2], ARGV[1])
if not spec then return false end
local meta = redis.call('HMGET', KEYS[1], 'status', 'total', 'deadline_ms', 'inputs', 'variables')
local status = meta[1]
local k = ARGV[1] .. ':'
local node = redis.call('HMGET', KEYS[3], k .. 'status', k .. 'attempts')
local node_status = node[1] or 'pending'
local attempt = tonumber(node[2] or '0')
local live = status == 'queued' or status == 'running'
local finished = node_status == 'succeeded' or node_status == 'skipped' or node_status == 'failed'
if live and not finished then
  attempt = redis.call('HINCRBY', KEYS[3], k .. 'attempts', 1)
  redis.call('HSET', KEYS[3], k .. 'status', 'running', k .. 'started_ms', ARGV[2],
             k .. 'worker', ARGV[3])
  if status == 'queued' then
    redis.call('HSET', KEYS[1], 'status', 'running', 'started_ms', ARGV[2])
  end
end
local sources = {}
for _, wire in ipairs(cjson.decode(spec)['wires']) do table.insert(sources, wire['source']) end
local upstream = {}
if #sources > 0 then upstream = redis.call('HMGET', KEYS[4], unpack(sources)) end
local pairs_out = {}
for i, source in ipairs(sources) do
  if upstream[i] then
    local ended = redis.call('HGET', KEYS[3], source .. ':finished_ms') or '0'
    table.insert(pairs_out, source); table.insert(pairs_out, upstream[i])
    table.insert(pairs_out, ended)
  end
end
return {spec, status, node_status, attempt, meta[2], meta[3], meta[4], meta[5], pairs_out}
"""

# KEYS: result, meta. ARGV: result, status, now (ms), ttl (s), channel, event without its seq.
_FINISH = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[4]) then
  redis.call('HSET', KEYS[2], 'status', ARGV[2], 'finished_ms', ARGV[3])
  local seq = redis.call('HINCRBY', KEYS[2], 'seq', 1)
  redis.call('PUBLISH', ARGV[5], ARGV[6] .. seq .. '}')
  return 1
end
return 0
"""


class RedisStateStore:
    """Execution state in Redis; every key of an execution expires after `ttl_s`."""

    def __init__(self, client: redis.Redis, ttl_s: int = DEFAULT_TTL_S) -> None:
        self.client = client
        self.ttl_s = ttl_s
        self._load = client.register_script(_LOAD)
        self._finish = client.register_script(_FINISH)

    def create(self, plan: ExecutionPlan) -> None:
        """Store meta and plan in one transaction."""
        execution_id = plan.execution_id
        pipe = self.client.pipeline(transaction=True)
        meta: dict[Any, Any] = meta_fields(plan)
        pipe.hset(keys.meta(execution_id), mapping=meta)
        pipe.hset(
            keys.plan(execution_id),
            mapping={key: node.model_dump_json() for key, node in plan.nodes.items()},
        )
        pipe.expire(keys.meta(execution_id), self.ttl_s)
        pipe.expire(keys.plan(execution_id), self.ttl_s)
        pipe.execute()

    def load(self, execution_id: str, key: str, worker: str) -> NodeLoad | None:
        """One EVALSHA: spec, execution state, attempt number and upstream outputs."""
        reply = self._load(
            keys=[
                keys.meta(execution_id),
                keys.plan(execution_id),
                keys.nodes(execution_id),
                keys.outputs(execution_id),
            ],
            args=[key, now_ms(), worker],
        )
        if not reply:
            return None
        spec, status, node_status, attempt, total, deadline, inputs, variables, flat = reply
        return NodeLoad(
            spec=_text(spec),
            execution_status=ExecutionStatus(_text(status)),
            node_status=NodeStatus(_text(node_status)),
            attempt=int(attempt),
            total=int(total),
            deadline_ms=int(deadline) if deadline else None,
            inputs=json.loads(inputs),
            variables=json.loads(variables),
            upstream={_text(flat[i]): _text(flat[i + 1]) for i in range(0, len(flat), 3)},
            upstream_finished_ms={_text(flat[i]): int(flat[i + 2]) for i in range(0, len(flat), 3)},
        )

    def complete(self, execution_id: str, key: str, output: str, status: NodeStatus) -> int:
        """One pipeline: output, status, the finished set and its size."""
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(keys.outputs(execution_id), key, output)
        pipe.hset(
            keys.nodes(execution_id),
            mapping={f"{key}:status": status.value, f"{key}:finished_ms": now_ms()},
        )
        pipe.sadd(keys.done(execution_id), key)
        pipe.scard(keys.done(execution_id))
        for name in (keys.outputs, keys.nodes, keys.done):
            pipe.expire(name(execution_id), self.ttl_s)
        return int(pipe.execute()[3])

    def expand(self, execution_id: str, expansion: Expansion) -> None:
        """One transaction: the items' node specs and virtual outputs, the loop's new spec,
        and the larger node total."""
        specs: dict[Any, Any] = {node.key: node.model_dump_json() for node in expansion.nodes}
        specs[expansion.loop.key] = expansion.loop.model_dump_json()
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(keys.plan(execution_id), mapping=specs)
        if expansion.item_outputs:
            items: dict[Any, Any] = dict(expansion.item_outputs)
            pipe.hset(keys.outputs(execution_id), mapping=items)
        pipe.hincrby(keys.meta(execution_id), "total", len(expansion.nodes))
        pipe.expire(keys.outputs(execution_id), self.ttl_s)
        pipe.execute()

    def fail(self, execution_id: str, key: str, error: dict[str, Any]) -> None:
        """Record the node's failure."""
        self._set_node(
            execution_id,
            {
                f"{key}:status": "failed",
                f"{key}:finished_ms": now_ms(),
                f"{key}:error": json.dumps(error),
            },
        )

    def retry_later(self, execution_id: str, key: str, error: dict[str, Any]) -> None:
        """Record a failed attempt before its retry."""
        self._set_node(
            execution_id, {f"{key}:status": "pending", f"{key}:error": json.dumps(error)}
        )

    def _set_node(self, execution_id: str, fields: dict[Any, Any]) -> None:
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(keys.nodes(execution_id), mapping=fields)
        pipe.expire(keys.nodes(execution_id), self.ttl_s)
        pipe.execute()

    def finish(self, execution_id: str, status: ExecutionStatus, result: str) -> bool:
        """Set the result once and publish the terminal event; False if already over."""
        event = {
            "id": str(uuid.uuid4()),
            "execution_id": execution_id,
            "type": f"execution.{status.value}",
            "node_id": None,
            "ts": now_ms() / 1000,
            "data": {"status": status.value},
        }
        prefix = json.dumps(event)[:-1] + ', "seq": '
        won = self._finish(
            keys=[keys.result(execution_id), keys.meta(execution_id)],
            args=[
                result,
                status.value,
                now_ms(),
                self.ttl_s,
                keys.events_channel(execution_id),
                prefix,
            ],
        )
        return bool(won)

    def result(self, execution_id: str) -> str | None:
        """The final result, if any."""
        value = self.client.get(keys.result(execution_id))
        return None if value is None else _text(value)

    def snapshot(self, execution_id: str, sinks: list[str]) -> Snapshot:
        """Meta, node records and sink outputs in one pipeline."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(keys.meta(execution_id))
        pipe.hkeys(keys.plan(execution_id))
        pipe.hgetall(keys.nodes(execution_id))
        if sinks:
            pipe.hmget(keys.outputs(execution_id), sinks)
        replies = pipe.execute()
        meta = {_text(k): _text(v) for k, v in replies[0].items()}
        fields = {_text(k): _text(v) for k, v in replies[2].items()}
        outs = replies[3] if sinks else []
        return Snapshot(
            meta=meta,
            nodes={_text(k): node_record(_text(k), fields) for k in replies[1]},
            sink_outputs={sink: _text(out) for sink, out in zip(sinks, outs, strict=True) if out},
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
            {_text(k): _text(v) for k, v in meta.items()},
            {_text(k): _text(v) for k, v in specs.items()},
        )
        return StoredPlan(plan, frozenset(_text(key) for key in done))


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
