-- park: settle or park a waiting node (docs/waits.md). While attempt `token` holds the node:
-- when its wait is over (a signal for it was sent, oldest first, or its time ran out), record
-- the arrival on the node (`<key>:arrival`, which a later attempt finds again) and drop its
-- wake-up; otherwise park it: no attempt holds it (lease 0, attempts not counted as lost
-- deliveries), it is in the waiting hash, its wake-up is due at its wake time (or the
-- execution's deadline, if sooner), and node.progress says what it waits for.
-- Returns {0} when the attempt does not hold the node or the execution is over,
-- {1, wake_ms} when parked, {2, arrival JSON} when the wait is over.
local meta_key, nodes_key, signals_key, waiting_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local stream_key, log_key, wakeups_key = KEYS[5], KEYS[6], KEYS[7]
local channel = ARGV[1]
local execution_id = ARGV[2]
local key = ARGV[3]
local token = ARGV[4]          -- the attempt
local signal = ARGV[5]         -- the signal's name, or '' for the time alone
local timeout_ms = tonumber(ARGV[6])
local now = ARGV[7]            -- the worker's clock (ms): the event's ts
local event_id = ARGV[8]

local meta = redis.call('HMGET', meta_key, 'status', 'deadline_ms')
if meta[1] ~= 'running' and meta[1] ~= 'paused' then return {0} end
local k = key .. ':'
local st = redis.call('HMGET', nodes_key, k .. 'status', k .. 'attempts')
if not held_by(st, token) then return {0} end
local member = execution_id .. '\n' .. key
local clock = clock_ms()
local arrival = redis.call('HGET', nodes_key, k .. 'arrival')
local wake = tonumber(redis.call('HGET', nodes_key, k .. 'wake_ms') or '')
if not wake then
  wake = clock + timeout_ms
  redis.call('HSET', nodes_key, k .. 'wake_ms', wake)
end
if not arrival and signal ~= '' then
  local prefix = signal .. '\n'
  for _, entry in ipairs(redis.call('LRANGE', signals_key, 0, -1)) do
    if string.sub(entry, 1, #prefix) == prefix then
      redis.call('LREM', signals_key, 1, entry)
      arrival = '{"signal":' .. cjson.encode(signal) .. ',"payload":' ..
                string.sub(entry, #prefix + 1) .. '}'
      break
    end
  end
end
if not arrival and clock >= wake then
  arrival = '{"signal":' .. (signal == '' and 'null' or cjson.encode(signal)) ..
            ',"timedOut":true}'
end
if arrival then
  redis.call('HSET', nodes_key, k .. 'arrival', arrival)
  redis.call('HDEL', waiting_key, key)
  redis.call('ZREM', wakeups_key, member)
  return {2, arrival}
end
local due = wake
if meta[2] and meta[2] ~= '' and tonumber(meta[2]) < due then due = tonumber(meta[2]) end
redis.call('HSET', nodes_key, k .. 'lease_ms', 0, k .. 'base', st[2])
redis.call('HSET', waiting_key, key, signal)
same_ttl(meta_key, waiting_key)
redis.call('ZADD', wakeups_key, due, member)
local message = 'waiting for signal ' .. signal
if signal == '' then message = 'waiting until ' .. wake end
emit(stream_of(meta_key, stream_key, log_key, channel, execution_id),
     {id=event_id, type='node.progress', node_id=key, ts=tonumber(now) / 1000,
      data={progress=0, message=message,
            waiting={signal=(signal == '' and cjson.null or signal), wake_ms=wake}}})
return {1, wake}
