-- take_token (rate limits): take a token from a bucket shared by every worker, refilled at
-- `rate` per second up to `burst`. Returns the wait in ms until a token is due (0: taken).
local bucket_key = KEYS[1]     -- hash: tokens, at (ms)
local rate = tonumber(ARGV[1])  -- tokens per second
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])  -- ms

local state = redis.call('HMGET', bucket_key, 'tokens', 'at')
local tokens = tonumber(state[1] or burst)
local at = tonumber(state[2] or now)
tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) * 1000 / rate) end
redis.call('HSET', bucket_key, 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', bucket_key, math.ceil(burst * 1000 / rate) + 60000)
return wait
