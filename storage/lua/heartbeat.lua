-- heartbeat: renew a running attempt's lease and note progress in the live index.
-- Returns {execution status ('' when gone), 1 if the attempt still holds the node else 0}.
local meta_key, nodes_key, live_key = KEYS[1], KEYS[2], KEYS[3]
local key = ARGV[1]
local token = ARGV[2]          -- the attempt
local lease_ms = tonumber(ARGV[3])
local execution_id = ARGV[4]

local k = key .. ':'
local status = redis.call('HGET', meta_key, 'status')
if not status then return {'', 0} end
local st = redis.call('HMGET', nodes_key, k .. 'status', k .. 'attempts')
if st[1] ~= 'running' or st[2] ~= token then return {status, 0} end
local clock = clock_ms()
redis.call('HSET', nodes_key, k .. 'lease_ms', clock + lease_ms)
if status == 'queued' or status == 'running' then redis.call('ZADD', live_key, clock, execution_id) end
return {status, 1}
