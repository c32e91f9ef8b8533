-- Shared by every state script: the loader puts this text before each script's own.
--
-- Key layout (storage/keys.py), every per-execution key tagged {<execution id>}:
--   conductor:exec:{id}:meta     hash   status, blueprint_*, inputs, variables, sinks, total,
--                                       created_ms, started_ms, finished_ms, deadline_ms,
--                                       dispatched_ms, redispatched, seq, lapsed:<node key>
--   conductor:exec:{id}:plan     hash   node key -> planned node (JSON)
--   conductor:exec:{id}:nodes    hash   <node key>:status|attempts|base|started_ms|finished_ms|
--                                       worker|lease_ms|error
--   conductor:exec:{id}:outputs  hash   node key -> output (JSON or a blob reference)
--   conductor:exec:{id}:done     set    node keys with an outcome
--   conductor:exec:{id}:result   string the final result (written once)
--   conductor:exec:{id}:events   list   the execution's events, in seq order
--   conductor:events             stream every execution's events, for the recorder
--   conductor:live               zset   live execution id -> last progress (ms, Redis clock)

-- Redis's clock: leases and the live index run on it, so workers' clocks need not agree.
local function clock_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- An event's stream: {meta=key, stream=key, log=key, channel=name, id=execution id}.
local function stream_of(meta_key, stream_key, log_key, channel, execution_id)
  return {meta=meta_key, stream=stream_key, log=log_key, channel=channel, id=execution_id}
end

-- Give `event` (a table) the execution's next seq, then XADD it for the recorder, RPUSH it to
-- the execution's log and PUBLISH it for live views. Payload shapes: storage/event_data.py.
local function emit(to, event)
  event['seq'] = redis.call('HINCRBY', to.meta, 'seq', 1)
  event['execution_id'] = to.id
  local text = cjson.encode(event)
  redis.call('XADD', to.stream, '*', 'event', text)
  redis.call('RPUSH', to.log, text)
  redis.call('PUBLISH', to.channel, text)
  return text
end

local function decode(text) if text == '' then return cjson.null end return cjson.decode(text) end

-- Keys an event touches live as long as the meta hash: a finished execution's are shorter.
local function same_ttl(meta_key, key)
  local ttl = redis.call('TTL', meta_key)
  if ttl > 0 then redis.call('EXPIRE', key, ttl) end
end

-- The same, done once: only a key with no TTL yet (its first write) takes the meta hash's. The
-- meta hash's TTL only changes where every key's is set (create, reopen, retention), so a key
-- that has one has the right one; a node's scripts then pay one TTL per key, not TTL + EXPIRE.
local function keep_ttl(meta_key, key)
  if redis.call('TTL', key) == -1 then same_ttl(meta_key, key) end
end

local function is_live(s) return s == 'queued' or s == 'running' or s == 'paused' end

local function finished(s)
  return s == 'succeeded' or s == 'skipped' or s == 'failed' or s == 'cancelled'
end

-- Whether attempt `token` ('' = whichever) still holds node `k` (`<key>:`): fencing.
-- `st` is the node's {status, attempts, ...} as read (HMGET).
local function held_by(st, token)
  if finished(st[1]) then return false end
  return token == '' or (st[1] == 'running' and st[2] == token)
end

local function holds(nodes_key, k, token)
  return held_by(redis.call('HMGET', nodes_key, k .. 'status', k .. 'attempts'), token)
end

-- HSET a JSON object's fields, in chunks under Lua's limit on unpacked arguments.
local function hset_object(key, object)
  local chunk = {}
  for field, value in pairs(object) do
    table.insert(chunk, field)
    table.insert(chunk, value)
    if #chunk >= 4000 then redis.call('HSET', key, unpack(chunk)); chunk = {} end
  end
  if #chunk > 0 then redis.call('HSET', key, unpack(chunk)) end
end
