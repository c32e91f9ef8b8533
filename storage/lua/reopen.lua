-- reopen (retry): make a failed or cancelled execution running again. The given nodes, and
-- every node that failed or was cancelled (also since the caller looked), lose their outcome
-- and start a new count of attempts (`base`; their attempt numbers, the fencing tokens, keep
-- growing). The timeout counts again from now; every key gets the running TTL back; emits
-- execution.resumed {status, retry: true, nodes}. A reset `blueprint` node's child hand-offs
-- kept from before are dropped (docs/children.md). Returns 1, 0 when not failed or cancelled,
-- -1 when unknown.
local meta_key, nodes_key, outputs_key, done_key, result_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local stream_key, log_key, live_key, plan_key = KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local signals_key = KEYS[10]
local channel = ARGV[1]
local execution_id = ARGV[2]
local now = ARGV[3]            -- ms
local event_id = ARGV[4]
local ttl_s = ARGV[5]
local asked = cjson.decode(ARGV[6])  -- JSON array: node keys to run again

local status = redis.call('HGET', meta_key, 'status')
if not status then return -1 end
if status ~= 'failed' and status ~= 'cancelled' then return 0 end
local reset = {}
for _, key in ipairs(asked) do reset[key] = true end
for _, key in ipairs(redis.call('HKEYS', plan_key)) do
  local s = redis.call('HGET', nodes_key, key .. ':status')
  if s == 'failed' or s == 'cancelled' then reset[key] = true end
end
local reset_keys = {}
for key in pairs(reset) do table.insert(reset_keys, key) end
table.sort(reset_keys)
for _, key in ipairs(reset_keys) do
  local k = key .. ':'
  redis.call('SREM', done_key, key)
  redis.call('HDEL', outputs_key, key)
  redis.call('HDEL', nodes_key, k .. 'error', k .. 'finished_ms', k .. 'lease_ms',
                 k .. 'wake_ms', k .. 'arrival', k .. 'profile')  -- a wait starts anew
  -- and a `blueprint` node's waits for its child's next end, not an earlier one's hand-off
  local handoff = 'child/' .. key .. '\n'
  for _, entry in ipairs(redis.call('LRANGE', signals_key, 0, -1)) do
    if string.sub(entry, 1, #handoff) == handoff then redis.call('LREM', signals_key, 0, entry) end
  end
  local attempts = redis.call('HGET', nodes_key, k .. 'attempts') or '0'
  redis.call('HSET', nodes_key, k .. 'status', 'pending', k .. 'base', attempts)
end
redis.call('DEL', result_key)
local meta = redis.call('HMGET', meta_key, 'deadline_ms', 'created_ms')
if meta[1] and meta[1] ~= '' then
  local span = tonumber(meta[1]) - tonumber(meta[2])
  redis.call('HSET', meta_key, 'deadline_ms', tonumber(now) + span)
end
redis.call('HSET', meta_key, 'status', 'running')
redis.call('HDEL', meta_key, 'finished_ms', 'redispatched')
redis.call('ZADD', live_key, clock_ms(), execution_id)
for _, key in ipairs({meta_key, nodes_key, outputs_key, done_key, log_key, plan_key}) do
  redis.call('EXPIRE', key, ttl_s)  -- a finished execution's keys had a shorter retention
end
emit(stream_of(meta_key, stream_key, log_key, channel, execution_id),
     {id=event_id, type='execution.resumed', node_id=cjson.null, ts=tonumber(now) / 1000,
      data={status='running', retry=true, nodes=reset_keys}})
return 1
