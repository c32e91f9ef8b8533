-- claim_slot (concurrency keys, storage/concurrency.py): a slot of the key for an execution
-- that runs again (a retry), or its place at the end of the line: then it gets a
-- queued_reason and leaves the live index (nothing of it is sent) until release_slot admits
-- it. Slots of holders that are over or gone are reclaimed first. Returns 1 when it holds a
-- slot (it may be sent now), 0 when it waits in line.
local running_key, waiting_key, slot_keys, live_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local concurrency_key = ARGV[1]
local execution_id = ARGV[2]
local meta_before = ARGV[3]    -- an execution's meta key is meta_before .. id .. meta_after
local meta_after = ARGV[4]
local now = tonumber(ARGV[5])  -- ms
local reason = ARGV[6]

local function meta_of(id) return meta_before .. id .. meta_after end

redis.call('SADD', slot_keys, concurrency_key)
if redis.call('ZSCORE', running_key, execution_id) then return 1 end
for _, holder in ipairs(redis.call('ZRANGE', running_key, 0, -1)) do
  local status = redis.call('HGET', meta_of(holder), 'status')
  if not status or not is_live(status) then redis.call('ZREM', running_key, holder) end
end
local limit = tonumber(redis.call('HGET', meta_of(execution_id), 'max_running')) or 1
local in_line = redis.call('LPOS', waiting_key, execution_id)
if not in_line and redis.call('LLEN', waiting_key) == 0
    and redis.call('ZCARD', running_key) < limit then
  redis.call('ZADD', running_key, now, execution_id)
  redis.call('HSET', meta_of(execution_id), 'admitted_ms', now)
  return 1
end
if not in_line then redis.call('RPUSH', waiting_key, execution_id) end
redis.call('HSET', meta_of(execution_id), 'queued_reason', reason)
redis.call('ZREM', live_key, execution_id)
return 0
