-- finish: set the execution's result once, leave the live index, and emit the terminal event
-- (also on the done channel, for waiters). A cancelled execution ends cancelled: a node's
-- failure or success arriving after the cancel loses. Returns 1 when this call ended it, else 0.
local result_key, meta_key, stream_key, log_key, live_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local channel = ARGV[1]
local execution_id = ARGV[2]
local result = ARGV[3]         -- the result object (JSON, or a blob reference)
local status = ARGV[4]         -- succeeded | failed | cancelled
local now = ARGV[5]            -- ms
local ttl_s = ARGV[6]
local open_event = ARGV[7]     -- the terminal event's JSON without its closing `seq}`
local done_channel = ARGV[8]

local current = redis.call('HGET', meta_key, 'status')
if current == 'cancelled' and status ~= 'cancelled' then return 0 end
if redis.call('SET', result_key, result, 'NX', 'EX', ttl_s) then
  redis.call('ZREM', live_key, execution_id)
  redis.call('HSET', meta_key, 'status', status, 'finished_ms', now)
  local text = open_event .. redis.call('HINCRBY', meta_key, 'seq', 1) .. '}'
  redis.call('XADD', stream_key, '*', 'event', text)
  redis.call('RPUSH', log_key, text)
  redis.call('PUBLISH', channel, text)
  redis.call('PUBLISH', done_channel, text)
  return 1
end
return 0
