-- transition: move the execution to `target` and emit `event_type` when its status is one of
-- `allowed` (pause, resume). A paused execution leaves the live index (it makes no progress on
-- purpose); any other target is put back, and stops stepping (a resume runs to the next
-- breakpoint). Returns 1 moved, 0 refused, -1 unknown execution.
local meta_key, stream_key, log_key, live_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local channel = ARGV[1]
local execution_id = ARGV[2]
local target = ARGV[3]
local now = ARGV[4]            -- ms
local event_id = ARGV[5]
local event_type = ARGV[6]
local allowed = ARGV[7]        -- the statuses it may move from, comma-separated

local status = redis.call('HGET', meta_key, 'status')
if not status then return -1 end
if not string.find(',' .. allowed .. ',', ',' .. status .. ',', 1, true) then return 0 end
redis.call('HSET', meta_key, 'status', target)
if target == 'paused' then
  redis.call('ZREM', live_key, execution_id)
else
  redis.call('HDEL', meta_key, 'step')
  redis.call('ZADD', live_key, clock_ms(), execution_id)
end
emit(stream_of(meta_key, stream_key, log_key, channel, execution_id),
     {id=event_id, type=event_type, node_id=cjson.null, ts=tonumber(now) / 1000,
      data={status=target}})
return 1
