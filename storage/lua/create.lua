-- create: store a new execution whole (meta, plan, execution.queued), or nothing when its id
-- is taken. An execution with a concurrency key takes one of the key's slots, or when they are
-- all taken (or others wait already) joins the key's line: it stays queued with a reason, out
-- of the live index (nothing of it is dispatched), until release_slot admits it.
-- Returns 1 when created (and admitted), 2 when created waiting in line, 0 when the id exists.
local meta_key, plan_key, stream_key, log_key, live_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local running_key, waiting_key, slot_keys = KEYS[6], KEYS[7], KEYS[8]  -- with a concurrency key
local channel = ARGV[1]        -- the execution's events channel
local execution_id = ARGV[2]
local ttl_s = ARGV[3]
local queued = ARGV[4]         -- the execution.queued event (JSON, seq 1)
local meta = ARGV[5]           -- JSON object: meta field -> value (strings)
local specs = ARGV[6]          -- JSON object: node key -> planned node (JSON text)
local concurrency_key = ARGV[7] or ''  -- '' for none
local max_running = tonumber(ARGV[8] or '0')
local waiting_event = ARGV[9]  -- execution.queued with the reason it waits
local reason = ARGV[10]

if redis.call('EXISTS', meta_key) == 1 then return 0 end
local waits = concurrency_key ~= '' and (redis.call('LLEN', waiting_key) > 0
  or redis.call('ZCARD', running_key) >= max_running)
hset_object(meta_key, cjson.decode(meta))
if waits then
  queued = waiting_event
  redis.call('HSET', meta_key, 'queued_reason', reason)
end
redis.call('EXPIRE', meta_key, ttl_s)
local plan = cjson.decode(specs)
if next(plan) ~= nil then
  hset_object(plan_key, plan)
  redis.call('EXPIRE', plan_key, ttl_s)
end
redis.call('XADD', stream_key, '*', 'event', queued)
redis.call('RPUSH', log_key, queued)
redis.call('EXPIRE', log_key, ttl_s)
redis.call('PUBLISH', channel, queued)
if concurrency_key ~= '' then redis.call('SADD', slot_keys, concurrency_key) end
if waits then
  redis.call('RPUSH', waiting_key, execution_id)
  return 2
end
if concurrency_key ~= '' then
  local now = clock_ms()
  redis.call('ZADD', running_key, now, execution_id)
  redis.call('HSET', meta_key, 'admitted_ms', now)
end
redis.call('ZADD', live_key, clock_ms(), execution_id)
return 1
