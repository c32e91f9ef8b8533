"""The Redis live index (a sorted set by last progress), the reconciler's counters and lock,
and a finished execution's retention: RedisStateStore's part behind storage/live_index."""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection
from typing import Any

import redis

from storage import keys
from storage.queue_depths import queue_depths
from storage.retention import expire_execution
from storage.scripts import Scripts


class RedisLiveIndex:
    """The live index and bookkeeping over one Redis client (RedisStateStore's base)."""

    client: redis.Redis
    scripts: Scripts
    ttl_s: int  # a running execution's keys live this long

    def clock_ms(self) -> int:
        """Redis's clock, which leases run on."""
        seconds, micros = self.client.time()
        return int(seconds) * 1000 + int(micros) // 1000

    def live_executions(self, idle_since_ms: int, start: int = 0, limit: int = 500) -> list[str]:
        """Executions in the live index that made no progress since `idle_since_ms`, oldest
        first, from the `start`th."""
        found = self.client.zrangebyscore(
            keys.LIVE_EXECUTIONS, "-inf", idle_since_ms, start=start, num=limit
        )
        return [text(value) for value in found]

    def touch_live(self, execution_id: str, at_ms: int) -> None:
        """Note progress at `at_ms` (Redis's clock); a reconciler's re-dispatch counts."""
        self.client.zadd(keys.LIVE_EXECUTIONS, {execution_id: at_ms})

    def forget_live(self, execution_id: str) -> None:
        """Drop an execution from the live index (it is over or gone)."""
        self.client.zrem(keys.LIVE_EXECUTIONS, execution_id)

    def last_progress_ms(self, execution_id: str) -> int | None:
        """Its score in the live index."""
        score = self.client.zscore(keys.LIVE_EXECUTIONS, execution_id)
        return None if score is None else int(score)

    def note_lapsed(self, execution_id: str, attempts: dict[str, int]) -> int:
        """One script: the `lapsed:<node>` meta fields not yet at these attempts are set."""
        lapsed = {key: str(attempt) for key, attempt in attempts.items()}
        fresh = self.scripts("note_lapsed", [keys.meta(execution_id)], [json.dumps(lapsed)])
        return int(fresh)

    def count_redispatch(self, execution_id: str) -> int:
        """HINCRBY of the meta's `redispatched`."""
        return int(self.client.hincrby(keys.meta(execution_id), "redispatched", 1))

    def queue_backlog(self, queues: Collection[str]) -> bool:
        """Whether a Celery queue on this Redis (its lists, one per priority) holds messages."""
        return any(depth > 0 for depth in queue_depths(self.client, sorted(queues)).values())

    def acquire_lock(self, name: str, ttl_ms: int) -> str | None:
        """SET NX PX with a fresh token."""
        token = str(uuid.uuid4())
        taken = self.client.set(keys.lock(name), token, nx=True, px=ttl_ms)
        return token if taken else None

    def release_lock(self, name: str, token: str) -> bool:
        """One script: DEL only while the lock holds `token`."""
        return bool(self.scripts("release_lock", [keys.lock(name)], [token]))

    def retire(self, execution_id: str, ttl_s: int) -> None:
        """Every key of a finished execution expires in `ttl_s` (never later than the running
        TTL), in one script (storage/retention)."""
        try:
            expire_execution(self.client, execution_id, min(ttl_s, self.ttl_s))
        except redis.RedisError:  # the execution is final; its keys keep the longer TTL
            return


def text(value: Any) -> str:
    """A reply as text."""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
