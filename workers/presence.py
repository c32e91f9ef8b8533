"""Worker presence: a worker's main process keeps a Redis key with a TTL alive while it runs.

Reading who is live costs two round trips (the index, then the keys), not a broadcast to every
worker the way Celery's `control.ping` is. A worker that dies without shutting down drops out
when its key expires (`ttl_s`); the index only lists candidates and is trimmed by the workers.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

import redis
from celery import Celery
from celery.signals import worker_ready, worker_shutdown
from pydantic import BaseModel, ConfigDict, ValidationError

from storage import keys

logger = logging.getLogger(__name__)

PRESENCE_TTL_S = 30
REFRESH_INTERVAL_S = 10
INDEX_RETENTION_S = 3600  # index entries not refreshed for this long are dropped


class WorkerPresence(BaseModel):
    """What a live worker announces about itself."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    queues: list[str]
    pid: int
    started_at: float


class PresenceBeacon:
    """Announces one worker every `interval_s` (from a thread) until stopped."""

    def __init__(
        self,
        client: redis.Redis,
        presence: WorkerPresence,
        ttl_s: int = PRESENCE_TTL_S,
        interval_s: float = REFRESH_INTERVAL_S,
    ) -> None:
        self.client = client
        self.presence = presence
        self.ttl_s = ttl_s
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def announce(self) -> None:
        """Write (or refresh) the presence key and index entry; trim stale index entries."""
        now = time.time()
        pipe = self.client.pipeline(transaction=True)
        pipe.set(
            keys.worker_presence(self.presence.name),
            self.presence.model_dump_json(),
            ex=self.ttl_s,
        )
        pipe.zadd(keys.WORKERS, {self.presence.name: now})
        pipe.zremrangebyscore(keys.WORKERS, "-inf", now - INDEX_RETENTION_S)
        pipe.execute()

    def start(self) -> None:
        """Announce now, then keep refreshing from a daemon thread (idempotent)."""
        if self._thread is not None:
            return
        self._refresh()
        self._thread = threading.Thread(target=self._run, name="conductor-presence", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop refreshing and withdraw the announcement."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval_s)
            self._thread = None
        try:
            pipe = self.client.pipeline(transaction=True)
            pipe.delete(keys.worker_presence(self.presence.name))
            pipe.zrem(keys.WORKERS, self.presence.name)
            pipe.execute()
        except redis.RedisError as exc:  # the key still expires on its own
            logger.warning("could not withdraw worker presence: %s", exc)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._refresh()

    def _refresh(self) -> None:
        try:
            self.announce()
        except redis.RedisError as exc:  # Redis may be back by the next refresh
            logger.warning("could not announce worker presence: %s", exc)


def live_workers(client: redis.Redis) -> list[WorkerPresence]:
    """Every worker whose presence key has not expired, by name."""
    members: Any = client.zrange(keys.WORKERS, 0, -1)
    names = [name.decode() if isinstance(name, bytes) else str(name) for name in members]
    if not names:
        return []
    values: Any = client.mget([keys.worker_presence(name) for name in names])
    live = []
    for value in values:
        if value is None:
            continue
        try:
            live.append(WorkerPresence.model_validate_json(value))
        except ValidationError:  # written by another version: not counted rather than fatal
            continue
    return sorted(live, key=lambda presence: presence.name)


def announce_presence(app: Celery, client: redis.Redis, queues: Sequence[str]) -> None:
    """Have this process's worker announce itself from `worker_ready` to `worker_shutdown`.

    Call it where the worker app is built (never on import); the signals are Celery's global
    ones, so handlers only act for senders of `app`.
    """
    beacons: list[PresenceBeacon] = []

    def ready(sender: Any, **_: Any) -> None:
        if sender.app is not app or beacons:
            return
        presence = WorkerPresence(
            name=str(sender.hostname), queues=list(queues), pid=os.getpid(), started_at=time.time()
        )
        beacons.append(PresenceBeacon(client, presence))
        beacons[0].start()

    def shutdown(sender: Any, **_: Any) -> None:
        if getattr(sender, "app", None) is not app:
            return
        while beacons:
            beacons.pop().stop()

    worker_ready.connect(ready, weak=False)
    worker_shutdown.connect(shutdown, weak=False)
