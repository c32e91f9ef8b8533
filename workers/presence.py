"""Worker presence: a worker's main process keeps its announcement alive while it runs (the
store is storage/presence.py: a Redis key with a TTL per worker)."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

from celery import Celery
from celery.signals import worker_ready, worker_shutdown

from storage.presence import PresenceStore, WorkerPresence
from storage.redis_client import StoreError

logger = logging.getLogger(__name__)

PRESENCE_TTL_S = 30
REFRESH_INTERVAL_S = 10

__all__ = ["PresenceBeacon", "WorkerPresence", "announce_presence", "live_workers"]


class PresenceBeacon:
    """Announces one worker every `interval_s` (from a thread) until stopped."""

    def __init__(
        self,
        store: PresenceStore,
        presence: WorkerPresence,
        ttl_s: int = PRESENCE_TTL_S,
        interval_s: float = REFRESH_INTERVAL_S,
    ) -> None:
        self.store = store
        self.presence = presence
        self.ttl_s = ttl_s
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def announce(self) -> None:
        """Write (or refresh) the announcement."""
        self.store.announce(self.presence, self.ttl_s)

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
            self.store.withdraw(self.presence.name)
        except StoreError as exc:  # the key still expires on its own
            logger.warning("could not withdraw worker presence: %s", exc)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._refresh()

    def _refresh(self) -> None:
        try:
            self.announce()
        except StoreError as exc:  # Redis may be back by the next refresh
            logger.warning("could not announce worker presence: %s", exc)


def live_workers(store: PresenceStore) -> list[WorkerPresence]:
    """Every worker whose announcement has not expired, by name."""
    return store.live()


def announce_presence(app: Celery, store: PresenceStore, queues: Sequence[str]) -> None:
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
        beacons.append(PresenceBeacon(store, presence))
        beacons[0].start()

    def shutdown(sender: Any, **_: Any) -> None:
        if getattr(sender, "app", None) is not app:
            return
        while beacons:
            beacons.pop().stop()

    worker_ready.connect(ready, weak=False)
    worker_shutdown.connect(shutdown, weak=False)
