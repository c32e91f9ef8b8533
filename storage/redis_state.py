"""The Redis StateStore: one script call to load a node, one to store its outcome.

Every state change emits its event in the same script: `seq` from the execution's meta hash,
XADD to the durable stream the recorder reads, PUBLISH for live views. So an outcome's event
is in Redis before the node task acknowledges its message.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection
from typing import Any

import redis

from conductor.model.plan import ExecutionPlan
from storage import keys
from storage.events import Event, EventType
from storage.state import (
    LEASE_MS,
    Completion,
    ExecutionExists,
    ExecutionStatus,
    Expansion,
    Heartbeat,
    NodeLoad,
    NodeStatus,
    Snapshot,
    StoredPlan,
    meta_fields,
    node_record,
    now_ms,
    plan_from_fields,
    queued_event,
    terminal_event,
)

DEFAULT_TTL_S = 7 * 24 * 3600
# The stream is not capped: trimming would drop events no recorder has read yet. The recorder
# deletes what it has recorded, so the stream holds only the recording backlog.
_RESERVED = ""

# clock_ms(): Redis's clock. Leases and the live set run on it, so workers' clocks need not agree.
_CLOCK = """
local function clock_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""

# emit(meta key, stream key, log key, event table): seq, XADD, RPUSH to the execution's log,
# PUBLISH. ARGV[1..3] of every script are the events channel, (reserved), the execution id.
_EMIT = (
    _CLOCK
    + """
local function emit(meta_key, stream_key, log_key, event)
  event['seq'] = redis.call('HINCRBY', meta_key, 'seq', 1)
  event['execution_id'] = ARGV[3]
  local text = cjson.encode(event)
  redis.call('XADD', stream_key, '*', 'event', text)
  redis.call('RPUSH', log_key, text)
  redis.call('PUBLISH', ARGV[1], text)
end
local function decode(text) if text == '' then return cjson.null end return cjson.decode(text) end
-- keys an event touches live as long as the meta hash: a finished execution's are shorter
local function same_ttl(meta_key, key)
  local ttl = redis.call('TTL', meta_key)
  if ttl > 0 then redis.call('EXPIRE', key, ttl) end
end
local function is_live(s) return s == 'queued' or s == 'running' or s == 'paused' end
local function finished(s)
  return s == 'succeeded' or s == 'skipped' or s == 'failed' or s == 'cancelled'
end
-- whether attempt `token` ('' = whichever) still holds the node `k` (fencing)
local function holds(nodes_key, k, token)
  local st = redis.call('HMGET', nodes_key, k .. 'status', k .. 'attempts')
  if finished(st[1]) then return false end
  return token == '' or (st[1] == 'running' and st[2] == token)
end
"""
)

# hset_all(key, first, last): HSET the field/value pairs ARGV[first..last], in chunks that stay
# under Lua's limit on unpacked arguments.
_HSET_ALL = """
local function hset_all(key, first, last)
  for start = first, last, 2000 do
    local chunk = {}
    for j = start, math.min(start + 1999, last) do table.insert(chunk, ARGV[j]) end
    redis.call('HSET', key, unpack(chunk))
  end
end
"""

# KEYS: meta, plan, stream, log, live executions. ARGV: channel, (reserved), execution id,
#       ttl (s), the execution.queued event, number of meta fields, then meta fields and values,
#       then plan keys and specs. Creates the execution whole, or not at all when the id is taken.
_CREATE = (
    _CLOCK
    + _HSET_ALL
    + """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local meta_end = 6 + 2 * tonumber(ARGV[6])
hset_all(KEYS[1], 7, meta_end)
redis.call('EXPIRE', KEYS[1], ARGV[4])
if meta_end < #ARGV then
  hset_all(KEYS[2], meta_end + 1, #ARGV)
  redis.call('EXPIRE', KEYS[2], ARGV[4])
end
redis.call('XADD', KEYS[3], '*', 'event', ARGV[5])
redis.call('RPUSH', KEYS[4], ARGV[5])
redis.call('EXPIRE', KEYS[4], ARGV[4])
redis.call('PUBLISH', ARGV[1], ARGV[5])
redis.call('ZADD', KEYS[5], clock_ms(), ARGV[3])
return 1
"""
)

# KEYS: meta, plan, nodes, outputs, stream, log, live executions.
# ARGV: channel, cap, execution id, node key, now (ms), worker, event id, event id, lease (ms),
#       phase ('collect' for a loop's collecting run, else '').
# A node another attempt holds (a lease not yet expired) is not taken: the reply says busy; nor
# is one delivered for the other phase of a loop (a stale duplicate): the reply says so.
_LOAD = (
    _EMIT
    + """
local spec = redis.call('HGET', KEYS[2], ARGV[4])
if not spec then return false end
local decoded = cjson.decode(spec)
local meta = redis.call('HMGET', KEYS[1], 'status', 'total', 'deadline_ms', 'inputs', 'variables')
local status = meta[1]
local k = ARGV[4] .. ':'
local node = redis.call('HMGET', KEYS[3], k .. 'status', k .. 'attempts', k .. 'lease_ms',
                        k .. 'base')
local node_status = node[1] or 'pending'
local attempt = tonumber(node[2] or '0')
local live = status == 'queued' or status == 'running'
local busy = 0
local wrong_phase = (decoded['expanded'] == true) ~= (ARGV[10] == 'collect')
if wrong_phase or not live or finished(node_status) then
  busy = 0
elseif node_status == 'running' and tonumber(node[3] or '0') > clock_ms() then
  busy = 1
else
  local ts = tonumber(ARGV[5]) / 1000
  attempt = redis.call('HINCRBY', KEYS[3], k .. 'attempts', 1)
  redis.call('HSET', KEYS[3], k .. 'status', 'running', k .. 'started_ms', ARGV[5],
             k .. 'worker', ARGV[6], k .. 'lease_ms', clock_ms() + tonumber(ARGV[9]))
  redis.call('ZADD', KEYS[7], clock_ms(), ARGV[3])
  same_ttl(KEYS[1], KEYS[3])
  if status == 'queued' then
    redis.call('HSET', KEYS[1], 'status', 'running', 'started_ms', ARGV[5])
    emit(KEYS[1], KEYS[5], KEYS[6], {id=ARGV[8], type='execution.started', node_id=cjson.null,
                                     ts=ts, data={}})
  end
  emit(KEYS[1], KEYS[5], KEYS[6], {id=ARGV[7], type='node.started', node_id=ARGV[4], ts=ts,
                          data={attempt=attempt, worker=ARGV[6], type=decoded['type']}})
end
local sources = {}
for _, wire in ipairs(decoded['wires']) do table.insert(sources, wire['source']) end
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
local tries = attempt - tonumber(node[4] or '0')
return {spec, status, node_status, attempt, meta[2], meta[3], meta[4], meta[5], pairs_out, busy,
        tries, wrong_phase and 1 or 0}
"""
)

# KEYS: meta, nodes, outputs, done, stream, log, live executions.
# ARGV: channel, cap, execution id, node key, output, status, now (ms), ttl, event id,
#       event type, error (JSON or ''), attempt token ('' = any).
_COMPLETE = (
    _EMIT
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local k = ARGV[4] .. ':'
-- a duplicate delivery or a stale attempt (fenced off): the first outcome stands, once
if not holds(KEYS[2], k, ARGV[12]) then return 0 end
if is_live(redis.call('HGET', KEYS[1], 'status')) then
  redis.call('ZADD', KEYS[7], clock_ms(), ARGV[3])
end
redis.call('HSET', KEYS[3], ARGV[4], ARGV[5])
redis.call('HSET', KEYS[2], k .. 'status', ARGV[6], k .. 'finished_ms', ARGV[7])
if ARGV[11] ~= '' then redis.call('HSET', KEYS[2], k .. 'error', ARGV[11]) end
redis.call('SADD', KEYS[4], ARGV[4])
local count = redis.call('SCARD', KEYS[4])
for i = 2, 4 do same_ttl(KEYS[1], KEYS[i]) end
local started = tonumber(redis.call('HGET', KEYS[2], k .. 'started_ms') or ARGV[7])
local data = {duration_ms = tonumber(ARGV[7]) - started}
if ARGV[11] ~= '' then data['error'] = decode(ARGV[11]); data['settled'] = true end
emit(KEYS[1], KEYS[5], KEYS[6], {id=ARGV[9], type=ARGV[10], node_id=ARGV[4],
                        ts=tonumber(ARGV[7]) / 1000, data=data})
-- the total now, not when the node loaded: a loop's expansion may have raised it since
if count >= tonumber(redis.call('HGET', KEYS[1], 'total')) then return 2 end
return 1
"""
)

# KEYS: meta, nodes, stream, log. ARGV: channel, cap, execution id, node key, status, now (ms),
#       ttl, event id, event type, error (JSON), retry in (s, or ''), attempt token ('' = any).
_SET_NODE = (
    _EMIT
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local k = ARGV[4] .. ':'
if not holds(KEYS[2], k, ARGV[12]) then return 0 end
redis.call('HSET', KEYS[2], k .. 'status', ARGV[5], k .. 'error', ARGV[10])
if ARGV[5] == 'failed' then redis.call('HSET', KEYS[2], k .. 'finished_ms', ARGV[6]) end
same_ttl(KEYS[1], KEYS[2])
local data = {error = decode(ARGV[10])}
if ARGV[11] ~= '' then
  data['retry_in_s'] = tonumber(ARGV[11])
  data['attempt'] = tonumber(redis.call('HGET', KEYS[2], k .. 'attempts') or '0')
else
  data['settled'] = false
end
emit(KEYS[1], KEYS[3], KEYS[4], {id=ARGV[8], type=ARGV[9], node_id=ARGV[4],
                        ts=tonumber(ARGV[6]) / 1000, data=data})
return 1
"""
)

# KEYS: meta, stream, log. ARGV: channel, cap, execution id, node key, now (ms), event id,
#       progress (0..1), message.
_PROGRESS = (
    _EMIT
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return end
emit(KEYS[1], KEYS[2], KEYS[3], {id=ARGV[6], type='node.progress', node_id=ARGV[4],
                        ts=tonumber(ARGV[5]) / 1000,
                        data={progress=tonumber(ARGV[7]), message=ARGV[8]}})
"""
)

# KEYS: meta, stream, log, live executions. ARGV: channel, cap, execution id, new status,
#       now (ms), event id, event type, allowed current statuses (comma-separated).
_TRANSITION = (
    _EMIT
    + """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return -1 end
if not string.find(',' .. ARGV[8] .. ',', ',' .. status .. ',', 1, true) then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[4])
if ARGV[4] == 'paused' then  -- makes no progress on purpose: not the reconciler's business
  redis.call('ZREM', KEYS[4], ARGV[3])
else
  redis.call('ZADD', KEYS[4], clock_ms(), ARGV[3])
end
emit(KEYS[1], KEYS[2], KEYS[3], {id=ARGV[6], type=ARGV[7], node_id=cjson.null,
                                 ts=tonumber(ARGV[5]) / 1000, data={status=ARGV[4]}})
return 1
"""
)

# KEYS: result, meta, stream, log, live executions. ARGV: channel, cap, execution id, result,
#       status, now (ms), ttl, the event's JSON without its closing seq, the done channel.
# A cancelled execution ends cancelled: a node's failure or success arriving after it loses.
_FINISH = """
local current = redis.call('HGET', KEYS[2], 'status')
if current == 'cancelled' and ARGV[5] ~= 'cancelled' then return 0 end
if redis.call('SET', KEYS[1], ARGV[4], 'NX', 'EX', ARGV[7]) then
  redis.call('ZREM', KEYS[5], ARGV[3])
  redis.call('HSET', KEYS[2], 'status', ARGV[5], 'finished_ms', ARGV[6])
  local text = ARGV[8] .. redis.call('HINCRBY', KEYS[2], 'seq', 1) .. '}'
  redis.call('XADD', KEYS[3], '*', 'event', text)
  redis.call('RPUSH', KEYS[4], text)
  redis.call('PUBLISH', ARGV[1], text)
  redis.call('PUBLISH', ARGV[9], text)
  return 1
end
return 0
"""


# KEYS: meta, plan, outputs, nodes. ARGV: loop key, attempt token, number of new nodes, number
#       of spec fields, then plan fields (key, spec), then item outputs (key, output).
# Adds a loop's items only while the expanding attempt holds the loop (a stale attempt would
# count them twice); then lease 0 says no attempt holds the loop while its items run, so the
# collecting run need not wait and the reconciler sees no lapsed lease.
_EXPAND = (
    _HSET_ALL
    + """
local k = ARGV[1] .. ':'
local st = redis.call('HMGET', KEYS[4], k .. 'status', k .. 'attempts')
if st[1] ~= 'running' or st[2] ~= ARGV[2] then return 0 end
local specs_end = 4 + tonumber(ARGV[4])
hset_all(KEYS[2], 5, specs_end)
if specs_end < #ARGV then hset_all(KEYS[3], specs_end + 1, #ARGV) end
redis.call('HINCRBY', KEYS[1], 'total', ARGV[3])
redis.call('HSET', KEYS[4], k .. 'lease_ms', 0)
local ttl = redis.call('TTL', KEYS[1])
if ttl > 0 then redis.call('EXPIRE', KEYS[3], ttl) end
return 1
"""
)

# KEYS: meta, nodes, live executions. ARGV: node key, attempt token, now (ms), lease (ms),
#       execution id. Renews the attempt's lease; says the execution's status and whether the
#       attempt still holds the node.
_HEARTBEAT = (
    _CLOCK
    + """
local k = ARGV[1] .. ':'
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'', 0} end
local st = redis.call('HMGET', KEYS[2], k .. 'status', k .. 'attempts')
if st[1] ~= 'running' or st[2] ~= ARGV[2] then return {status, 0} end
local clock = clock_ms()
redis.call('HSET', KEYS[2], k .. 'lease_ms', clock + tonumber(ARGV[4]))
if status == 'queued' or status == 'running' then redis.call('ZADD', KEYS[3], clock, ARGV[5]) end
return {status, 1}
"""
)

# KEYS: meta, plan, nodes, done. ARGV: now (ms). Marks a live or paused execution cancelled and
# every node without an outcome cancelled (which fences off their running attempts); 0 when it
# is over or every node has finished, -1 when unknown.
_CANCEL = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return -1 end
if status ~= 'queued' and status ~= 'running' and status ~= 'paused' then return 0 end
if redis.call('SCARD', KEYS[4]) >= tonumber(redis.call('HGET', KEYS[1], 'total')) then
  return 0
end
redis.call('HSET', KEYS[1], 'status', 'cancelled')
for _, key in ipairs(redis.call('HKEYS', KEYS[2])) do
  local s = redis.call('HGET', KEYS[3], key .. ':status') or 'pending'
  if s == 'pending' or s == 'running' then
    redis.call('HSET', KEYS[3], key .. ':status', 'cancelled', key .. ':finished_ms', ARGV[1])
  end
end
local ttl = redis.call('TTL', KEYS[1])
if ttl > 0 then redis.call('EXPIRE', KEYS[3], ttl) end
return 1
"""

# KEYS: meta, nodes, outputs, done, result, stream, log, live executions, plan.
# ARGV: channel, cap, execution id, now (ms), event id, ttl (s), then the node keys to run again.
# Reopens a failed or cancelled execution: those nodes lose their outcome and start a new
# count of attempts (their attempt numbers, the fencing tokens, keep growing).
_REOPEN = (
    _EMIT
    + """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return -1 end
if status ~= 'failed' and status ~= 'cancelled' then return 0 end
local reset = {}
for i = 7, #ARGV do reset[ARGV[i]] = true end
for _, key in ipairs(redis.call('HKEYS', KEYS[9])) do  -- also what failed since the caller looked
  local s = redis.call('HGET', KEYS[2], key .. ':status')
  if s == 'failed' or s == 'cancelled' then reset[key] = true end
end
local reset_keys = {}
for key in pairs(reset) do
  table.insert(reset_keys, key)
  local k = key .. ':'
  redis.call('SREM', KEYS[4], key)
  redis.call('HDEL', KEYS[3], key)
  redis.call('HDEL', KEYS[2], k .. 'error', k .. 'finished_ms', k .. 'lease_ms')
  local attempts = redis.call('HGET', KEYS[2], k .. 'attempts') or '0'
  redis.call('HSET', KEYS[2], k .. 'status', 'pending', k .. 'base', attempts)
end
redis.call('DEL', KEYS[5])
local meta = redis.call('HMGET', KEYS[1], 'deadline_ms', 'created_ms')
if meta[1] and meta[1] ~= '' then  -- the execution's timeout counts again from now
  local span = tonumber(meta[1]) - tonumber(meta[2])
  redis.call('HSET', KEYS[1], 'deadline_ms', tonumber(ARGV[4]) + span)
end
redis.call('HSET', KEYS[1], 'status', 'running')
redis.call('HDEL', KEYS[1], 'finished_ms', 'redispatched')
redis.call('ZADD', KEYS[8], clock_ms(), ARGV[3])
for _, key in ipairs({KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[7], KEYS[9]}) do
  redis.call('EXPIRE', key, ARGV[6])  -- a finished execution's keys had a shorter retention
end
emit(KEYS[1], KEYS[6], KEYS[7], {id=ARGV[5], type='execution.resumed', node_id=cjson.null,
                                 ts=tonumber(ARGV[4]) / 1000,
                                 data={status='running', retry=true, nodes=reset_keys}})
return 1
"""
)


class RedisStateStore:
    """Execution state in Redis; every key of an execution expires after `ttl_s`."""

    def __init__(
        self, client: redis.Redis, ttl_s: int = DEFAULT_TTL_S, lease_ms: int = LEASE_MS
    ) -> None:
        self.client = client
        self.ttl_s = ttl_s
        self.lease_ms = lease_ms
        self._create = client.register_script(_CREATE)
        self._load = client.register_script(_LOAD)
        self._complete = client.register_script(_COMPLETE)
        self._set_node = client.register_script(_SET_NODE)
        self._finish = client.register_script(_FINISH)
        self._progress = client.register_script(_PROGRESS)
        self._transition = client.register_script(_TRANSITION)
        self._heartbeat = client.register_script(_HEARTBEAT)
        self._cancel = client.register_script(_CANCEL)
        self._reopen = client.register_script(_REOPEN)
        self._expand = client.register_script(_EXPAND)

    def _common(self, execution_id: str) -> list[Any]:
        return [keys.events_channel(execution_id), _RESERVED, execution_id]

    def create(self, plan: ExecutionPlan) -> None:
        """Store meta and plan and emit execution.queued (seq 1), all in one script; an
        execution id that exists already raises ExecutionExists (exactly one creator wins)."""
        execution_id = plan.execution_id
        meta = {**meta_fields(plan), "seq": "1"}
        specs = [item for key, node in plan.nodes.items() for item in (key, node.model_dump_json())]
        created = self._create(
            keys=[
                keys.meta(execution_id),
                keys.plan(execution_id),
                keys.EVENTS_STREAM,
                keys.events_log(execution_id),
                keys.LIVE_EXECUTIONS,
            ],
            args=[
                *self._common(execution_id),
                self.ttl_s,
                queued_event(plan).model_dump_json(),
                len(meta),
                *[item for pair in meta.items() for item in pair],
                *specs,
            ],
        )
        if not created:
            raise ExecutionExists(execution_id)

    def load(
        self, execution_id: str, key: str, worker: str, phase: str | None = None
    ) -> NodeLoad | None:
        """One EVALSHA: spec, execution state, attempt number and upstream outputs."""
        reply = self._load(
            keys=[
                keys.meta(execution_id),
                keys.plan(execution_id),
                keys.nodes(execution_id),
                keys.outputs(execution_id),
                keys.EVENTS_STREAM,
                keys.events_log(execution_id),
                keys.LIVE_EXECUTIONS,
            ],
            args=[
                *self._common(execution_id),
                key,
                now_ms(),
                worker,
                _id(),
                _id(),
                self.lease_ms,
                phase or "",
            ],
        )
        if not reply:
            return None
        spec, status, node_status, attempt, total, deadline, inputs, variables, flat = reply[:9]
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
    ) -> Completion:
        """One script: output, status, the finished set, the node's event (node.cached for an
        output reused from the cache). With `attempt`, only while that attempt holds the node."""
        event_type = EventType.NODE_CACHED if cached else _OUTCOME_EVENTS[status]
        return Completion(
            self._complete(
                keys=[
                    keys.meta(execution_id),
                    keys.nodes(execution_id),
                    keys.outputs(execution_id),
                    keys.done(execution_id),
                    keys.EVENTS_STREAM,
                    keys.events_log(execution_id),
                    keys.LIVE_EXECUTIONS,
                ],
                args=[
                    *self._common(execution_id),
                    key,
                    output,
                    status.value,
                    now_ms(),
                    self.ttl_s,
                    _id(),
                    event_type.value,
                    json.dumps(error) if error else "",
                    _token(attempt),
                ],
            )
        )

    def expand(self, execution_id: str, expansion: Expansion, *, attempt: int) -> bool:
        """One script: the items' node specs and virtual outputs, the loop's new spec, and the
        larger node total; False (nothing written) when `attempt` no longer holds the loop."""
        specs = [(node.key, node.model_dump_json()) for node in expansion.nodes]
        specs.append((expansion.loop.key, expansion.loop.model_dump_json()))
        fields = [item for pair in specs for item in pair]
        outputs = [item for pair in expansion.item_outputs.items() for item in pair]
        expanded = self._expand(
            keys=[
                keys.meta(execution_id),
                keys.plan(execution_id),
                keys.outputs(execution_id),
                keys.nodes(execution_id),
            ],
            args=[
                expansion.loop.key,
                attempt,
                len(expansion.nodes),
                len(fields),
                *fields,
                *outputs,
            ],
        )
        return bool(expanded)

    def fail(
        self, execution_id: str, key: str, error: dict[str, Any], *, attempt: int | None = None
    ) -> bool:
        """Record the node's failure and emit node.failed; False if the node has an outcome or
        `attempt` no longer holds it."""
        return self._node_event(
            execution_id,
            key,
            status=NodeStatus.FAILED,
            event=EventType.NODE_FAILED,
            error=error,
            retry_in_s="",
            attempt=attempt,
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
        return self._node_event(
            execution_id,
            key,
            status=NodeStatus.PENDING,
            event=EventType.NODE_RETRYING,
            error=error,
            retry_in_s=retry_in_s,
            attempt=attempt,
        )

    def _node_event(
        self,
        execution_id: str,
        key: str,
        *,
        status: NodeStatus,
        event: EventType,
        error: dict[str, Any],
        retry_in_s: float | str,
        attempt: int | None,
    ) -> bool:
        stored = self._set_node(
            keys=[
                keys.meta(execution_id),
                keys.nodes(execution_id),
                keys.EVENTS_STREAM,
                keys.events_log(execution_id),
            ],
            args=[
                *self._common(execution_id),
                key,
                status.value,
                now_ms(),
                self.ttl_s,
                _id(),
                event.value,
                json.dumps(error),
                retry_in_s,
                _token(attempt),
            ],
        )
        return bool(stored)

    def progress(self, execution_id: str, key: str, fraction: float, message: str) -> None:
        """Emit node.progress."""
        self._progress(
            keys=[keys.meta(execution_id), keys.EVENTS_STREAM, keys.events_log(execution_id)],
            args=[*self._common(execution_id), key, now_ms(), _id(), fraction, message],
        )

    def finish(
        self,
        execution_id: str,
        status: ExecutionStatus,
        result: str,
        summary: dict[str, Any] | None = None,
    ) -> bool:
        """Set the result once and emit the terminal event; False if already over."""
        event = terminal_event(execution_id, status, result, summary).model_dump(
            mode="json", exclude={"seq"}
        )
        open_event = json.dumps(event, separators=(",", ":"))[:-1] + ',"seq":'
        won = self._finish(
            keys=[
                keys.result(execution_id),
                keys.meta(execution_id),
                keys.EVENTS_STREAM,
                keys.events_log(execution_id),
                keys.LIVE_EXECUTIONS,
            ],
            args=[
                *self._common(execution_id),
                result,
                status.value,
                now_ms(),
                self.ttl_s,
                open_event,
                keys.done_channel(execution_id),
            ],
        )
        return bool(won)

    def heartbeat(self, execution_id: str, key: str, attempt: int) -> Heartbeat:
        """Renew the attempt's lease; say whether it still holds the node, and the execution's
        status (None when the execution is gone)."""
        status, holds = self._heartbeat(
            keys=[keys.meta(execution_id), keys.nodes(execution_id), keys.LIVE_EXECUTIONS],
            args=[key, attempt, now_ms(), self.lease_ms, execution_id],
        )
        text = _text(status)
        return Heartbeat(ExecutionStatus(text) if text else None, bool(holds))

    def cancel(self, execution_id: str) -> bool | None:
        """Mark a live or paused execution and its unfinished nodes cancelled (finalize then
        ends it); False when it is over, None when unknown."""
        marked = int(
            self._cancel(
                keys=[
                    keys.meta(execution_id),
                    keys.plan(execution_id),
                    keys.nodes(execution_id),
                    keys.done(execution_id),
                ],
                args=[now_ms()],
            )
        )
        return None if marked < 0 else marked == 1

    def reopen(self, execution_id: str, node_keys: Collection[str]) -> bool | None:
        """Make a failed or cancelled execution running again with `node_keys` back to
        pending (emits execution.resumed with `retry: true`); False when it is not failed or
        cancelled, None when unknown."""
        reopened = int(
            self._reopen(
                keys=[
                    keys.meta(execution_id),
                    keys.nodes(execution_id),
                    keys.outputs(execution_id),
                    keys.done(execution_id),
                    keys.result(execution_id),
                    keys.EVENTS_STREAM,
                    keys.events_log(execution_id),
                    keys.LIVE_EXECUTIONS,
                    keys.plan(execution_id),
                ],
                args=[
                    *self._common(execution_id),
                    now_ms(),
                    _id(),
                    self.ttl_s,
                    *sorted(node_keys),
                ],
            )
        )
        return None if reopened < 0 else reopened == 1

    def clock_ms(self) -> int:
        """Redis's clock, which leases run on."""
        seconds, micros = self.client.time()
        return int(seconds) * 1000 + int(micros) // 1000

    def live_executions(self, idle_since_ms: int, start: int = 0, limit: int = 500) -> list[str]:
        """Executions in the live index that made no progress since `idle_since_ms`, oldest
        first, from the `start`th."""
        found = self.client.zrangebyscore(
            keys.LIVE_EXECUTIONS, "-inf", idle_since_ms, start=start, num=limit
        )
        return [_text(value) for value in found]

    def touch_live(self, execution_id: str, at_ms: int) -> None:
        """Note progress at `at_ms` (Redis's clock); a reconciler's re-dispatch counts."""
        self.client.zadd(keys.LIVE_EXECUTIONS, {execution_id: at_ms})

    def forget_live(self, execution_id: str) -> None:
        """Drop an execution from the live index (it is over or gone)."""
        self.client.zrem(keys.LIVE_EXECUTIONS, execution_id)

    def events(self, execution_id: str, after_seq: int = 0) -> list[Event] | None:
        """The execution's events with seq > after_seq; None when Redis no longer has it."""
        texts = self.client.lrange(keys.events_log(execution_id), after_seq, -1)
        if not texts and not self.client.exists(keys.meta(execution_id)):
            return None
        return [Event.model_validate_json(text) for text in texts]

    def transition(
        self,
        execution_id: str,
        allowed: frozenset[ExecutionStatus],
        target: ExecutionStatus,
        event: EventType,
    ) -> bool | None:
        """Move to `target` (emitting `event`) if the status is one of `allowed`; False if it
        is not, None if the execution is unknown."""
        moved = int(
            self._transition(
                keys=[
                    keys.meta(execution_id),
                    keys.EVENTS_STREAM,
                    keys.events_log(execution_id),
                    keys.LIVE_EXECUTIONS,
                ],
                args=[
                    *self._common(execution_id),
                    target.value,
                    now_ms(),
                    _id(),
                    event.value,
                    ",".join(sorted(s.value for s in allowed)),
                ],
            )
        )
        return None if moved < 0 else moved == 1

    def cached_output(self, digest: str) -> str | None:
        """A node output cached under `digest`, if it has not expired."""
        value = self.client.get(keys.node_cache(digest))
        return None if value is None else _text(value)

    def cache_output(self, digest: str, output: str, ttl_s: int) -> None:
        """Keep a node output for `ttl_s` seconds."""
        self.client.set(keys.node_cache(digest), output, ex=ttl_s)

    def mark_dispatched(self, execution_id: str) -> None:
        """Note that the execution's canvas reached the broker."""
        self.client.hset(keys.meta(execution_id), "dispatched_ms", now_ms())

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


_OUTCOME_EVENTS = {
    NodeStatus.SUCCEEDED: EventType.NODE_SUCCEEDED,
    NodeStatus.SKIPPED: EventType.NODE_SKIPPED,
    NodeStatus.FAILED: EventType.NODE_FAILED,
}


def _token(attempt: int | None) -> str:
    return "" if attempt is None else str(attempt)


def _id() -> str:
    return str(uuid.uuid4())


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
