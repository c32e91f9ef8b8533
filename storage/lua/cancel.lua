-- cancel: mark a live or paused execution cancelled and every node without an outcome
-- cancelled (which fences off their running attempts); finalize then ends it. Whatever else
-- its state: also one whose nodes all finished but that was never finalized (stuck).
-- Returns 1 when marked, 0 when it is over, -1 when unknown.
local meta_key, plan_key, nodes_key = KEYS[1], KEYS[2], KEYS[3]
local now = ARGV[1]            -- ms

local status = redis.call('HGET', meta_key, 'status')
if not status then return -1 end
if not is_live(status) then return 0 end
redis.call('HSET', meta_key, 'status', 'cancelled')
for _, key in ipairs(redis.call('HKEYS', plan_key)) do
  local s = redis.call('HGET', nodes_key, key .. ':status') or 'pending'
  if s == 'pending' or s == 'running' then
    redis.call('HSET', nodes_key, key .. ':status', 'cancelled', key .. ':finished_ms', now)
  end
end
same_ttl(meta_key, nodes_key)
return 1
