"""Everything Conductor keeps in Redis, built over one client (storage/redis_client.py's
policy): the layers above ask this for stores and never see a Redis command."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

import redis

from storage.blob_refs import redis_mentions
from storage.blueprint_archive import RedisBlueprintArchive
from storage.concurrency import ConcurrencySlots
from storage.event_source import EventSource, FanOutEventSource, RedisEventSource
from storage.idempotency import RedisIdempotency
from storage.node_outputs import RedisNodeOutputs
from storage.presence import RedisPresence
from storage.queue_depths import queue_depths
from storage.rate_limits import RateLimiter
from storage.recorder_stream import RecorderStream
from storage.redis_client import MAX_CONNECTIONS, is_sentinel, redis_client
from storage.redis_state import RedisStateStore


class RedisBackend:
    """One Redis client and the stores over it."""

    def __init__(self, client: redis.Redis, *, replicas: int = 0) -> None:
        self.client = client
        # that a creation and the recorder wait for (a primary behind Sentinels)
        self.replicas = replicas
        self._fan_out: FanOutEventSource | None = None
        self._lock = threading.Lock()

    @classmethod
    def connect(
        cls,
        url: str,
        *,
        master: str | None = None,
        max_connections: int = MAX_CONNECTIONS,
        name: str | None = None,
    ) -> RedisBackend:
        """A backend on a new client (connections are made lazily), named `name` in Redis;
        `master` is the primary's name when `url` names Sentinels."""
        client = redis_client(url, master=master, max_connections=max_connections, name=name)
        return cls(client, replicas=1 if is_sentinel(url) else 0)

    def state_store(self, *, ttl_s: int, lease_ms: int) -> RedisStateStore:
        """Execution state."""
        return RedisStateStore(self.client, ttl_s=ttl_s, lease_ms=lease_ms, replicas=self.replicas)

    def concurrency_slots(self) -> ConcurrencySlots:
        """Concurrency keys' slots and lines."""
        return ConcurrencySlots(self.client)

    def event_source(self, *, shared: bool = False) -> EventSource:
        """Live events: `shared` is one subscription for the whole process (a server with
        many viewers), otherwise a connection per subscription."""
        if not shared:
            return RedisEventSource(self.client)
        with self._lock:
            if self._fan_out is None:
                self._fan_out = FanOutEventSource(self.client)
            return self._fan_out

    def idempotency(self) -> RedisIdempotency:
        """Idempotency-key claims."""
        return RedisIdempotency(self.client)

    def presence(self) -> RedisPresence:
        """Worker presence."""
        return RedisPresence(self.client)

    def node_outputs(self) -> RedisNodeOutputs:
        """Stored node outputs."""
        return RedisNodeOutputs(self.client)

    def blueprint_archive(self, *, ttl_s: int) -> RedisBlueprintArchive:
        """Submitted Blueprints by digest, until the recorder copies them into history."""
        return RedisBlueprintArchive(self.client, ttl_s)

    def recorder_stream(self) -> RecorderStream:
        """The events stream's recorder group."""
        return RecorderStream(self.client, replicas=self.replicas)

    def rate_limiter(self) -> RateLimiter:
        """Token buckets shared by every worker."""
        return RateLimiter(self.client)

    def queue_depths(self, queues: Sequence[str]) -> dict[str, int]:
        """Messages waiting in each broker queue."""
        return queue_depths(self.client, queues)

    def blob_mentions(self) -> Iterator[str]:
        """Values that mention a blob (the blob collector's marks in live state)."""
        return redis_mentions(self.client)

    def ping(self) -> None:
        """Raise a StoreError unless Redis answers."""
        self.client.ping()

    def close(self) -> None:
        """Stop the shared subscription and drop the connections."""
        if self._fan_out is not None:
            self._fan_out.close()
        self.client.close()
        # close() leaves a pool the client was given open: its sockets would be left to the
        # garbage collector (a ResourceWarning in a later test)
        self.client.connection_pool.disconnect()
