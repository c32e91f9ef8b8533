"""Rate limits that hold across all workers: token buckets in Redis (Celery's are per worker)."""

from __future__ import annotations

import time

import redis

from storage import keys

# KEYS: bucket. ARGV: rate (tokens/s), burst, now (ms). Returns the wait in ms (0: go).
_TAKE = """
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1] or burst)
local at = tonumber(state[2] or now)
tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) * 1000 / rate) end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 60000)
return wait
"""


class RateLimiter:
    """Takes a token from a shared bucket, or says how long to wait for one."""

    def __init__(self, client: redis.Redis) -> None:
        self._take = client.register_script(_TAKE)

    def wait_s(self, key: str, per_second: float, burst: int) -> float:
        """0 when a token was taken; otherwise seconds until one is due (none is taken)."""
        now_ms = int(time.time() * 1000)
        wait_ms = int(self._take(keys=[keys.rate_limit(key)], args=[per_second, burst, now_ms]))
        return wait_ms / 1000
