-- set_node: record a failed attempt, either final (status failed, node.failed with settled
-- false) or before a retry (status pending, node.retrying with attempt and retry_in_s).
-- Nothing when the node has an outcome, the attempt no longer holds it, or the execution is
-- over (no event follows the terminal one). Returns 1 when recorded, else 0.
local meta_key, nodes_key, stream_key, log_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local channel = ARGV[1]
local execution_id = ARGV[2]
local key = ARGV[3]
local status = ARGV[4]         -- failed | pending
local now = ARGV[5]            -- ms
local event_id = ARGV[6]
local event_type = ARGV[7]     -- node.failed | node.retrying
local error = ARGV[8]          -- JSON
local retry_in_s = ARGV[9]     -- seconds, or '' for a final failure
local token = ARGV[10]         -- the attempt, or '' for whichever
local profile = ARGV[11] or ''  -- JSON (what the run used), or '' (or absent)

local execution_status = redis.call('HGET', meta_key, 'status')
if not is_live(execution_status) then return 0 end
local k = key .. ':'
if not holds(nodes_key, k, token) then return 0 end
redis.call('HSET', nodes_key, k .. 'status', status, k .. 'error', error)
if status == 'failed' then redis.call('HSET', nodes_key, k .. 'finished_ms', now) end
keep_ttl(meta_key, nodes_key)
local data = {error = decode(error)}
if retry_in_s ~= '' then
  data['retry_in_s'] = tonumber(retry_in_s)
  data['attempt'] = tonumber(redis.call('HGET', nodes_key, k .. 'attempts') or '0')
else
  data['settled'] = false
end
if profile ~= '' then
  redis.call('HSET', nodes_key, k .. 'profile', profile)
  data['profile'] = decode(profile)
end
emit(stream_of(meta_key, stream_key, log_key, channel, execution_id),
     {id=event_id, type=event_type, node_id=key, ts=tonumber(now) / 1000, data=data})
return 1
