-- release_slot (concurrency keys, storage/concurrency.py): give back the slot of an execution
-- that ended (or take it out of the line it waited in), reclaim the slots of holders that are
-- over or gone (a finalize cut short), then admit the executions first in line while the key
-- has room. An admitted execution loses its queued_reason, enters the live index (so the
-- reconciler re-sends it if the caller dies before dispatching it) and its timeout counts from
-- now. Returns the ids admitted, in line order: the caller dispatches them.
--
--   conductor:slots:{key}:running  zset  execution id -> when it took the slot (ms)
--   conductor:slots:{key}:waiting  list  execution ids, first in line at the head
--   conductor:slots:keys           set   keys with a slot taken or a line
local running_key, waiting_key, slot_keys, live_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local concurrency_key = ARGV[1]
local ended = ARGV[2]          -- the execution that ended ('' for a sweep)
local meta_before = ARGV[3]    -- an execution's meta key is meta_before .. id .. meta_after
local meta_after = ARGV[4]
local now = tonumber(ARGV[5])  -- ms

local function meta_of(id) return meta_before .. id .. meta_after end

if ended ~= '' then
  redis.call('ZREM', running_key, ended)
  redis.call('LREM', waiting_key, 0, ended)
end
for _, holder in ipairs(redis.call('ZRANGE', running_key, 0, -1)) do
  local status = redis.call('HGET', meta_of(holder), 'status')
  if not status or not is_live(status) then redis.call('ZREM', running_key, holder) end
end

local admitted = {}
while true do
  local head = redis.call('LINDEX', waiting_key, 0)
  if not head then break end
  local meta_key = meta_of(head)
  local meta = redis.call('HMGET', meta_key, 'status', 'max_running', 'deadline_ms', 'created_ms')
  if meta[1] and is_live(meta[1]) then
    if redis.call('ZCARD', running_key) >= (tonumber(meta[2]) or 1) then break end
    redis.call('ZADD', running_key, now, head)
    redis.call('HDEL', meta_key, 'queued_reason')
    redis.call('HSET', meta_key, 'admitted_ms', now)
    -- waiting in line is not running time (a retry's reopen already restarted its clock)
    if meta[1] == 'queued' and meta[3] and meta[3] ~= '' and meta[4] then
      redis.call('HSET', meta_key, 'deadline_ms', now + tonumber(meta[3]) - tonumber(meta[4]))
    end
    if meta[1] ~= 'paused' then redis.call('ZADD', live_key, clock_ms(), head) end
    table.insert(admitted, head)
  end
  redis.call('LPOP', waiting_key)  -- admitted, or over or gone while it waited
end
if redis.call('ZCARD', running_key) == 0 and redis.call('LLEN', waiting_key) == 0 then
  redis.call('SREM', slot_keys, concurrency_key)
end
return admitted
