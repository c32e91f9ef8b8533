-- expire_finished (retention): give every key of a finished execution `ttl_s` to live, so no
-- reader sees half an execution; nothing while it is not over (a retry reopened it and keeps
-- its running TTL). Returns 1 when set, 0 when the execution is not over.
local meta_key = KEYS[1]       -- then every other key of the execution (storage/keys.py)
local ttl_s = ARGV[1]

local status = redis.call('HGET', meta_key, 'status')
if status ~= 'succeeded' and status ~= 'failed' and status ~= 'cancelled' then return 0 end
for _, key in ipairs(KEYS) do redis.call('EXPIRE', key, ttl_s) end
return 1
