-- step: resume a paused execution for one step: only the nodes in `chosen` may start; any
-- other node that comes up pauses the execution again (load.lua). Returns 1 stepped, 0 not
-- paused, -1 unknown execution.
local meta_key, stream_key, log_key, live_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local channel = ARGV[1]
local execution_id = ARGV[2]
local now = ARGV[3]            -- ms
local event_id = ARGV[4]
local chosen = ARGV[5]         -- JSON array: the node keys this step runs

local status = redis.call('HGET', meta_key, 'status')
if not status then return -1 end
if status ~= 'paused' then return 0 end
redis.call('HSET', meta_key, 'status', 'running', 'step', chosen)
redis.call('ZADD', live_key, clock_ms(), execution_id)
emit(stream_of(meta_key, stream_key, log_key, channel, execution_id),
     {id=event_id, type='execution.resumed', node_id=cjson.null, ts=tonumber(now) / 1000,
      data={status='running', step=cjson.decode(chosen)}})
return 1
