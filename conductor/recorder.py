"""The recorder: moves events from the Redis Stream into the execution-history store.

It commits a batch before acknowledging it (XACK, then XDEL: the stream keeps only what is not
recorded yet), so a recorder stopped at any moment loses nothing: unacknowledged entries are
read again by the next run under the same consumer name (the host name by default), and
recording is idempotent by event id. Entries that another consumer read and never
acknowledged are claimed after `claim_idle_ms`.

Given the Blueprint archive and node outputs in Redis, it also keeps what replay needs: the
Blueprint an execution.queued names by digest, and every node's output when an execution ends
(read from Redis then, so events stay small). Both are written after the events' transaction
and before the acknowledgement, so a recorder stopped in between writes them again.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import TYPE_CHECKING

from pydantic import ValidationError

from storage.blueprint_archive import BlueprintArchive
from storage.events import Event, EventType
from storage.history import HistoryStore, InvalidEvent
from storage.history_state import check_event
from storage.node_outputs import NodeOutputs
from storage.recorder_stream import Entry, RecorderStream, as_recorder_stream
from storage.redis_client import Redis

if TYPE_CHECKING:
    from conductor.services import Services

log = logging.getLogger(__name__)

BATCH_SIZE = 500
CLAIM_IDLE_MS = 60_000
RETRY_DELAYS_S = (0.1, 0.5, 1.0, 2.0, 5.0)


class Recorder:
    """One consumer of the events stream's `recorder` group."""

    def __init__(
        self,
        stream: RecorderStream | Redis,
        history: HistoryStore,
        *,
        consumer: str | None = None,
        batch_size: int = BATCH_SIZE,
        claim_idle_ms: int = CLAIM_IDLE_MS,
        blueprints: BlueprintArchive | None = None,
        outputs: NodeOutputs | None = None,
    ) -> None:
        self.stream = as_recorder_stream(stream)
        self.history = history
        # Stable across restarts, so a restarted recorder takes back what it had read.
        self.consumer = consumer or socket.gethostname()
        self.batch_size = batch_size
        self.claim_idle_ms = claim_idle_ms
        self.blueprints = blueprints
        self.outputs = outputs

    @classmethod
    def from_services(cls, services: Services, consumer: str | None = None) -> Recorder:
        """A recorder on the services' Redis and history that also keeps what replay needs."""
        backend = services.backend
        return cls(
            backend.recorder_stream(),
            services.history,
            consumer=consumer,
            blueprints=backend.blueprint_archive(ttl_s=services.settings.state_ttl_s),
            outputs=backend.node_outputs(),
        )

    def ensure_group(self) -> None:
        """Create the consumer group from the stream's start (every event is recorded)."""
        self.stream.ensure_group()

    def step(self, block_ms: int | None = 1000) -> int:
        """Record one batch of new entries; returns how many entries were handled."""
        return self._record(self.stream.read_new(self.consumer, self.batch_size, block_ms))

    def recover(self) -> int:
        """Record what this consumer read before and did not acknowledge, then what other
        consumers left unacknowledged for longer than `claim_idle_ms`."""
        handled = 0
        while batch := self.stream.read_pending(self.consumer, self.batch_size):
            gone = [entry_id for entry_id, fields in batch if not fields]  # trimmed away
            if gone:
                self.stream.acknowledge(gone)
            handled += self._record([entry for entry in batch if entry[1]])
        return handled + self._claim()

    def _claim(self) -> int:
        handled, start = 0, "0-0"
        while True:
            start, entries = self.stream.claim_idle(
                self.consumer, self.claim_idle_ms, start, self.batch_size
            )
            handled += self._record(entries) if entries else 0
            if start == "0-0":
                return handled

    def _record(self, entries: list[Entry]) -> int:
        if not entries:
            return 0
        events = []
        for _, fields in entries:
            try:  # a poison entry would block its batch forever: set it aside, loudly
                event = Event.model_validate_json(fields[b"event"])
                check_event(event)
            except (KeyError, ValidationError, InvalidEvent) as exc:
                log.error("dropping an event the history store cannot take: %s", exc)
                continue
            events.append(event)
        self.history.record(events)  # commits; only then acknowledge
        self._keep_for_replay(events)
        self.stream.settle([entry_id for entry_id, _ in entries])
        return len(entries)

    def _keep_for_replay(self, events: list[Event]) -> None:
        """Copy the batch's new Blueprints and its ended executions' outputs into history."""
        texts: dict[str, str] = {}
        outputs: dict[str, dict[str, str]] = {}
        if self.blueprints is not None:
            digests = {
                str(event.data["blueprint_hash"])
                for event in events
                if event.type == EventType.EXECUTION_QUEUED and event.data.get("blueprint_hash")
            }
            texts = self.blueprints.texts(digests) if digests else {}
        if self.outputs is not None:
            ended = {event.execution_id for event in events if event.type.is_terminal}
            # none in Redis (expired before the recorder came): keep what history has
            found = self.outputs.every(ended) if ended else {}
            outputs = {execution_id: kept for execution_id, kept in found.items() if kept}
        self.history.keep_for_replay(texts, outputs)

    def drain(self) -> int:
        """Record everything in the stream now, and return (for the embedded stack)."""
        self.ensure_group()
        handled = self.recover()
        while (count := self.step(block_ms=None)) > 0:
            handled += count
        return handled

    def run(self, stop: threading.Event, block_ms: int = 1000) -> None:
        """Record until `stop` is set, riding out Redis restarts and connection losses."""
        failures = 0
        while not stop.is_set():
            try:
                self.ensure_group()
                self.recover()
                last_claim = time.monotonic()
                while not stop.is_set():
                    self.step(block_ms)
                    failures = 0
                    if time.monotonic() - last_claim > self.claim_idle_ms / 1000:
                        self._claim()
                        last_claim = time.monotonic()
            except Exception as exc:  # Redis or the history store is away: wait and go on
                delay = RETRY_DELAYS_S[min(failures, len(RETRY_DELAYS_S) - 1)]
                failures += 1
                log.warning("recorder: %s; retrying in %.1f s", exc, delay)
                stop.wait(delay)
