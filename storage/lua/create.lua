-- create: store a new execution whole (meta, plan, execution.queued), or nothing when its id
-- is taken. Returns 1 when created, 0 when the id exists.
local meta_key, plan_key, stream_key, log_key, live_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local channel = ARGV[1]        -- the execution's events channel
local execution_id = ARGV[2]
local ttl_s = ARGV[3]
local queued = ARGV[4]         -- the execution.queued event (JSON, seq 1)
local meta = ARGV[5]           -- JSON object: meta field -> value (strings)
local specs = ARGV[6]          -- JSON object: node key -> planned node (JSON text)

if redis.call('EXISTS', meta_key) == 1 then return 0 end
hset_object(meta_key, cjson.decode(meta))
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
redis.call('ZADD', live_key, clock_ms(), execution_id)
return 1
