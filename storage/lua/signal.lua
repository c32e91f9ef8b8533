-- signal: keep a signal for the execution's waiting nodes (a node waiting for its name takes
-- the oldest such signal when it parks, or is sent again) and say which nodes are parked
-- waiting for it now; each of their wake-ups comes due `retry_ms` from now, so the execution
-- is sent again even if the caller dies before it does.
-- Returns {-1} for an unknown execution, {0, status} when it is over, {-2} when it keeps too
-- many signals already, else {1, node keys parked waiting for it...}.
local meta_key, signals_key, waiting_key, wakeups_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local execution_id = ARGV[1]
local signal = ARGV[2]
local payload = ARGV[3]        -- JSON text
local max_pending = tonumber(ARGV[4])
local retry_ms = tonumber(ARGV[5])

local status = redis.call('HGET', meta_key, 'status')
if not status then return {-1} end
if not is_live(status) then return {0, status} end
if redis.call('LLEN', signals_key) >= max_pending then return {-2} end
redis.call('RPUSH', signals_key, signal .. '\n' .. payload)
same_ttl(meta_key, signals_key)
local reply = {1}
if status ~= 'running' then return reply end  -- resume (or the first node) takes it
-- a retry waiting in its concurrency key's line: nothing of it may be sent; admission sends it
if redis.call('HEXISTS', meta_key, 'queued_reason') == 1 then return reply end
local due = clock_ms() + retry_ms
local parked = redis.call('HGETALL', waiting_key)
for i = 1, #parked, 2 do
  if parked[i + 1] == signal then
    table.insert(reply, parked[i])
    redis.call('ZADD', wakeups_key, due, execution_id .. '\n' .. parked[i])
  end
end
return reply
