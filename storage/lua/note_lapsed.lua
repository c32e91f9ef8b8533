-- note_lapsed: remember, once per lost attempt, that a node's lease lapsed (meta field
-- `lapsed:<node key>` = the attempt), so the reconciler re-dispatches once for each.
-- Returns how many of the given attempts were new.
local meta_key = KEYS[1]
local lapsed = cjson.decode(ARGV[1])  -- JSON object: node key -> attempt (string)

if redis.call('EXISTS', meta_key) == 0 then return 0 end
local fresh = 0
for key, attempt in pairs(lapsed) do
  local field = 'lapsed:' .. key
  if redis.call('HGET', meta_key, field) ~= attempt then
    redis.call('HSET', meta_key, field, attempt)
    fresh = fresh + 1
  end
end
return fresh
