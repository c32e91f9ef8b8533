"""Where live workers are announced: a key with a TTL per worker, and an index of names.

Reading who is live costs two round trips (the index, then the keys), not a broadcast to every
worker the way Celery's `control.ping` is. A worker that dies without shutting down drops out
when its key expires; the index only lists candidates and is trimmed by the workers.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import redis
from pydantic import BaseModel, ConfigDict, ValidationError

from storage import keys

INDEX_RETENTION_S = 3600  # index entries not refreshed for this long are dropped


class WorkerPresence(BaseModel):
    """What a live worker announces about itself."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    queues: list[str]
    pid: int
    started_at: float


class PresenceStore(Protocol):
    """Announcements of live workers."""

    def announce(self, presence: WorkerPresence, ttl_s: int) -> None:
        """Write (or refresh) a worker's announcement for `ttl_s` seconds."""

    def withdraw(self, name: str) -> None:
        """Remove a worker's announcement."""

    def live(self) -> list[WorkerPresence]:
        """Every worker whose announcement has not expired, by name."""


class RedisPresence:
    """Presence keys with a TTL and a sorted-set index of names."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def announce(self, presence: WorkerPresence, ttl_s: int) -> None:
        """One transaction: the key, the index entry, and the index's stale entries trimmed."""
        now = time.time()
        pipe = self.client.pipeline(transaction=True)
        pipe.set(keys.worker_presence(presence.name), presence.model_dump_json(), ex=ttl_s)
        pipe.zadd(keys.WORKERS, {presence.name: now})
        pipe.zremrangebyscore(keys.WORKERS, "-inf", now - INDEX_RETENTION_S)
        pipe.execute()

    def withdraw(self, name: str) -> None:
        """Delete the key and the index entry."""
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(keys.worker_presence(name))
        pipe.zrem(keys.WORKERS, name)
        pipe.execute()

    def live(self) -> list[WorkerPresence]:
        """The index, then the keys that still exist."""
        members: Any = self.client.zrange(keys.WORKERS, 0, -1)
        names = [name.decode() if isinstance(name, bytes) else str(name) for name in members]
        if not names:
            return []
        values: Any = self.client.mget([keys.worker_presence(name) for name in names])
        live = []
        for value in values:
            if value is None:
                continue
            try:
                live.append(WorkerPresence.model_validate_json(value))
            except ValidationError:  # written by another version: not counted rather than fatal
                continue
        return sorted(live, key=lambda presence: presence.name)


class MemoryPresence:
    """The in-memory twin."""

    def __init__(self) -> None:
        self.announced: dict[str, tuple[WorkerPresence, float]] = {}

    def announce(self, presence: WorkerPresence, ttl_s: int) -> None:
        """Keep it until `ttl_s` from now."""
        self.announced[presence.name] = (presence, time.monotonic() + ttl_s)

    def withdraw(self, name: str) -> None:
        """Forget it."""
        self.announced.pop(name, None)

    def live(self) -> list[WorkerPresence]:
        """The unexpired ones, by name."""
        now = time.monotonic()
        return sorted(
            (p for p, until in self.announced.values() if until > now), key=lambda p: p.name
        )
