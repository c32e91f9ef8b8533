-- wake: claim the wake-ups due by Redis's clock, at most `limit`: each comes due again
-- `retry_ms` later (unless its node settles or parks anew meanwhile), so exactly one caller
-- fires it now, and it fires again if that caller dies before sending the execution.
-- Returns the claimed members (`<execution id>\n<node key>`, or `<execution id>\n`).
local wakeups_key = KEYS[1]
local limit = tonumber(ARGV[1])
local retry_ms = tonumber(ARGV[2])

local clock = clock_ms()
local due = redis.call('ZRANGEBYSCORE', wakeups_key, '-inf', clock, 'LIMIT', 0, limit)
for _, member in ipairs(due) do redis.call('ZADD', wakeups_key, clock + retry_ms, member) end
return due
