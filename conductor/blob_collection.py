"""Blob collection: blobs that no live execution (Redis) and no recorded one (history)
refers to any more are deleted, by `conductor blobs gc` and by a thread in every worker (one
pass at a time across workers: a lock in the store)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

from celery.signals import worker_ready, worker_shutdown

from conductor.model.settings import Settings
from conductor.services import Services
from storage.blob_gc import Collection, collect
from storage.blob_refs import BlobMarks

log = logging.getLogger(__name__)

LOCK = "blob-gc"  # the store's lock held by the one collector running a pass
LOCK_MS = 30 * 60 * 1000  # a pass that dies with the lock frees it this much later


class CollectionBusy(RuntimeError):
    """Another process is running a collection pass."""


@dataclass
class BlobCollector:
    """Marks from live state and history, then the sweep; `run_forever` in a worker."""

    services: Services
    marks: BlobMarks = field(init=False)

    def __post_init__(self) -> None:
        self.marks = BlobMarks(self.services.stores.blobs)

    def referenced(self) -> set[str]:
        """Every blob a live execution or a recorded one refers to (an error here stops
        the pass before anything is deleted)."""
        texts = chain(self.services.backend.blob_mentions(), self.services.history.blob_mentions())
        return self.marks.referenced(texts)

    def run_once(self, *, dry_run: bool = False, grace_s: float | None = None) -> Collection:
        """One pass under the lock; CollectionBusy when another holds it."""
        state = self.services.stores.state
        token = state.acquire_lock(LOCK, LOCK_MS)
        if token is None:
            raise CollectionBusy("another blob collection is running; try again later")
        try:
            grace = self.services.settings.blob_gc_grace_s if grace_s is None else grace_s
            return collect(
                self.services.stores.blobs,
                self.referenced,
                grace_s=grace,
                partial_grace_s=self.services.settings.max_time_limit_s(),
                dry_run=dry_run,
            )
        finally:
            state.release_lock(LOCK, token)

    def run_forever(self, stop: threading.Event, every_s: float) -> None:
        """A pass every `every_s` until `stop`; failures are logged, never fatal."""
        while not stop.wait(every_s):
            try:
                done = self.run_once()
            except CollectionBusy:
                continue
            except Exception:  # Redis or the history unreachable: the next pass tries again
                log.exception("blob collection failed")
                continue
            if done.deleted or done.partial_swept:
                log.info("blob collection: %s", done.as_dict())


def collect_in_worker(settings: Settings) -> None:
    """Run a collector thread in this worker's main process, from worker_ready to shutdown
    (none when CONDUCTOR_BLOB_GC_EVERY_S is 0)."""
    if settings.blob_gc_every_s <= 0:
        return
    stop = threading.Event()

    def start(**_: Any) -> None:
        collector = BlobCollector(Services.from_settings(settings, name="blob-collector"))
        thread = threading.Thread(
            target=collector.run_forever,
            args=(stop, settings.blob_gc_every_s),
            name="blob-collector",
            daemon=True,
        )
        thread.start()

    worker_ready.connect(start, weak=False)
    worker_shutdown.connect(lambda **_: stop.set(), weak=False)
