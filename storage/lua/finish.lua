-- finish: set the execution's result once, leave the live index, and emit the terminal event
-- (also on the done channel, for waiters). A cancelled execution ends cancelled: a node's
-- failure or success arriving after the cancel loses. A failed or cancelled execution drains
-- in the same script: every node without an outcome (pending, running, or in its retries)
-- ends cancelled, which fences off its attempt (its heartbeat then stops it), and the terminal
-- event lists every cancelled node (data.cancelled) so history ends them too.
-- A child execution (docs/children.md) also hands its end to its parent's `blueprint` node,
-- as a signal the node takes when it parks (KEYS[8..12], ARGV[10..12]): kept while the parent
-- is live, its parked node's wake-up due now; the parent's wake-up thread sends it again.
-- Returns 1 when this call ended it, else 0.
local result_key, meta_key, stream_key, log_key, live_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local plan_key, nodes_key = KEYS[6], KEYS[7]
local channel = ARGV[1]
local execution_id = ARGV[2]
local result = ARGV[3]         -- the result object (JSON, or a blob reference)
local status = ARGV[4]         -- succeeded | failed | cancelled
local now = ARGV[5]            -- ms
local ttl_s = ARGV[6]
local event_head = ARGV[7]     -- the terminal event's JSON up to `"seq":`
local event_data = ARGV[8]     -- then `,"data":{...,"cancelled":` (closed here)
local done_channel = ARGV[9]

local current = redis.call('HGET', meta_key, 'status')
if current == 'cancelled' and status ~= 'cancelled' then return 0 end
if not redis.call('SET', result_key, result, 'NX', 'EX', ttl_s) then return 0 end
redis.call('ZREM', live_key, execution_id)
redis.call('HSET', meta_key, 'status', status, 'finished_ms', now)
redis.call('HDEL', meta_key, 'queued_reason', 'lined_ms')  -- ended in line: it waits no more
local cancelled = {}
if status ~= 'succeeded' then
  for _, key in ipairs(redis.call('HKEYS', plan_key)) do
    local s = redis.call('HGET', nodes_key, key .. ':status') or 'pending'
    if s == 'pending' or s == 'running' then
      redis.call('HSET', nodes_key, key .. ':status', 'cancelled', key .. ':finished_ms', now)
      s = 'cancelled'
    end
    if s == 'cancelled' then table.insert(cancelled, key) end
  end
  table.sort(cancelled)
  same_ttl(meta_key, nodes_key)
end
local listed = '[]'
if #cancelled > 0 then listed = cjson.encode(cancelled) end
local text = event_head .. redis.call('HINCRBY', meta_key, 'seq', 1) .. event_data .. listed .. '}}'
redis.call('XADD', stream_key, '*', 'event', text)
redis.call('RPUSH', log_key, text)
redis.call('PUBLISH', channel, text)
redis.call('PUBLISH', done_channel, text)
if #KEYS > 7 then
  local parent_meta, parent_signals, parent_waiting, wakeups_key = KEYS[8], KEYS[9], KEYS[10], KEYS[11]
  local parent_id, signal, payload = ARGV[10], ARGV[11], ARGV[12]
  local parent_status = redis.call('HGET', parent_meta, 'status')
  if parent_status and is_live(parent_status) then
    redis.call('RPUSH', parent_signals, signal .. '\n' .. payload)
    same_ttl(parent_meta, parent_signals)
    local node_key = string.sub(signal, #'child/' + 1)
    if parent_status == 'running' and redis.call('HEXISTS', parent_waiting, node_key) == 1 then
      redis.call('ZADD', wakeups_key, clock_ms(), parent_id .. '\n' .. node_key)
      redis.call('RPUSH', KEYS[12], '1')  -- a wake-up thread fires it now, not at its next look
      redis.call('LTRIM', KEYS[12], -100, -1)
    end
  end
end
return 1
