"""`AttemptWatch`: keeps a running attempt's lease alive and stops it when it must stop.

One daemon thread per worker process. About once a second it renews the lease of each attempt
running there (one script call, which also reads the execution's status). An attempt whose
execution was cancelled, or that lost its node (fenced off), is told to stop through its
context's `stop` event; one that has not returned `grace_s` later is stopped the hard way
(`hard_stop`: in a pool child, exiting it; its message is requeued and then ignored).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from storage.redis_client import StoreError
from storage.state import ExecutionStatus, StateStore

log = logging.getLogger(__name__)

HEARTBEAT_EVERY_S = 1.0
STOP_GRACE_S = 2.0


@dataclass
class _Watched:
    execution_id: str
    key: str
    attempt: int
    stop: threading.Event
    settling: threading.Event
    started: float = field(default_factory=time.monotonic)
    stop_requested: float | None = None
    hard_stopped: bool = False


class AttemptWatch:
    """Heartbeats for the attempts running in this process, and their stop signal."""

    def __init__(
        self,
        state: StateStore,
        *,
        every_s: float = HEARTBEAT_EVERY_S,
        grace_s: float = STOP_GRACE_S,
        hard_stop: Callable[[str], None] | None = None,
    ) -> None:
        self.state = state
        self.every_s = every_s
        self.grace_s = grace_s
        self.hard_stop = hard_stop
        self._watched: dict[int, _Watched] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None

    @contextmanager
    def watching(
        self,
        execution_id: str,
        key: str,
        attempt: int,
        stop: threading.Event,
        settling: threading.Event,
    ) -> Iterator[None]:
        """Renew this attempt's lease while the block runs; set `stop` if it must stop. Once
        `settling` is set (the attempt is storing its outcome) it is left alone."""
        entry = _Watched(execution_id, key, attempt, stop, settling)
        with self._lock:
            self._watched[id(entry)] = entry
            self._ensure_thread()
        try:
            yield
        finally:
            with self._lock:
                self._watched.pop(id(entry), None)

    def _ensure_thread(self) -> None:
        """Start the thread in this process (a forked pool child does not inherit it)."""
        if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
            return
        self._pid = os.getpid()
        self._thread = threading.Thread(target=self._loop, name="attempt-watch", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            time.sleep(self.every_s / 4)
            with self._lock:
                entries = list(self._watched.values())
            now = time.monotonic()
            for entry in entries:
                try:
                    self._check(entry, now)
                except Exception:  # the watch must outlive any one failure
                    log.exception("attempt watch of %s/%s failed", entry.execution_id, entry.key)

    def _check(self, entry: _Watched, now: float) -> None:
        if entry.settling.is_set():
            return
        if entry.stop_requested is not None:
            late = now - entry.stop_requested > self.grace_s
            if late and self.hard_stop is not None and not entry.hard_stopped:
                entry.hard_stopped = True
                self.hard_stop(f"{entry.execution_id}/{entry.key} did not stop when told")
            return
        if now - entry.started < self.every_s:
            return
        entry.started = now  # next beat one period from now
        try:
            beat = self.state.heartbeat(entry.execution_id, entry.key, entry.attempt)
        except StoreError as exc:  # the lease may lapse; the attempt is fenced if so
            log.warning("heartbeat of %s/%s failed: %s", entry.execution_id, entry.key, exc)
            return
        if beat.holds and beat.status not in (ExecutionStatus.CANCELLED, None):
            return
        reason = "lost its node" if not beat.holds else f"execution {beat.status}"
        log.info("stopping %s/%s: %s", entry.execution_id, entry.key, reason)
        entry.stop_requested = now
        entry.stop.set()
