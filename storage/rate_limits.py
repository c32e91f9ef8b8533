"""Rate limits that hold across all workers: token buckets in Redis (Celery's are per worker)."""

from __future__ import annotations

import time

import redis

from storage import keys
from storage.scripts import source


class RateLimiter:
    """Takes a token from a shared bucket, or says how long to wait for one."""

    def __init__(self, client: redis.Redis) -> None:
        self._take = client.register_script(source("take_token"))

    def wait_s(self, key: str, per_second: float, burst: int) -> float:
        """0 when a token was taken; otherwise seconds until one is due (none is taken)."""
        now_ms = int(time.time() * 1000)
        wait_ms = int(self._take(keys=[keys.rate_limit(key)], args=[per_second, burst, now_ms]))
        return wait_ms / 1000
