"""The recorder's side of the events stream (a Redis Stream with one consumer group): read
new entries, take back unacknowledged ones, and acknowledge-and-delete what was recorded.

Behind Sentinels (`replicas` > 0) a read of new entries waits (WAIT, up to `wait_ms`) until
that many replicas hold everything the read returned: replication is asynchronous, and a
failover must not take back an event the history store already holds (docs/sentinel.md)."""

from __future__ import annotations

import logging
from typing import Any

import redis

from storage import keys
from storage.scripts import REPLICA_WAIT_MS

log = logging.getLogger(__name__)

# One entry: its id and its fields (empty when the entry was trimmed away meanwhile).
Entry = tuple[Any, dict[bytes, bytes]]


class RecorderStream:
    """The `recorder` consumer group on the events stream."""

    def __init__(
        self, client: redis.Redis, *, replicas: int = 0, wait_ms: int = REPLICA_WAIT_MS
    ) -> None:
        self.client = client
        self.replicas = replicas
        self.wait_ms = wait_ms

    def ensure_group(self) -> None:
        """Create the group from the stream's start (every event is recorded)."""
        try:
            self.client.xgroup_create(
                keys.EVENTS_STREAM, keys.RECORDER_GROUP, id="0", mkstream=True
            )
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def read_new(self, consumer: str, count: int, block_ms: int | None) -> list[Entry]:
        """Entries no consumer has read yet (waiting up to `block_ms`; None: no wait), once
        `replicas` replicas hold them (or `wait_ms` passed)."""
        if not self.replicas:
            reply: Any = self.client.xreadgroup(
                keys.RECORDER_GROUP, consumer, {keys.EVENTS_STREAM: ">"}, count=count,
                block=block_ms,
            )  # fmt: skip
            return [entry for _, entries in reply or [] for entry in entries]
        # One connection for both: WAIT covers what its own connection wrote, and delivering
        # entries is a write (the group's pending list) made after the entries themselves.
        pipe = self.client.pipeline(transaction=False)
        pipe.xreadgroup(
            keys.RECORDER_GROUP, consumer, {keys.EVENTS_STREAM: ">"}, count=count, block=block_ms
        )
        pipe.wait(self.replicas, self.wait_ms)
        reply, acknowledged = pipe.execute()
        found = [entry for _, entries in reply or [] for entry in entries]
        if found and acknowledged < self.replicas:
            log.warning(
                "recording %d events that %d of %d replicas hold: a failover now may take "
                "them back", len(found), acknowledged, self.replicas,
            )  # fmt: skip
        return found

    def read_pending(self, consumer: str, count: int) -> list[Entry]:
        """Entries `consumer` read before and did not acknowledge."""
        reply: Any = self.client.xreadgroup(
            keys.RECORDER_GROUP, consumer, {keys.EVENTS_STREAM: "0"}, count=count
        )
        return [entry for _, entries in reply or [] for entry in entries]

    def claim_idle(
        self, consumer: str, min_idle_ms: int, start: str, count: int
    ) -> tuple[str, list[Entry]]:
        """Take over entries others left unacknowledged for `min_idle_ms`; the next start
        ("0-0" when the scan is complete) and the entries (trimmed ones left out)."""
        reply: Any = self.client.xautoclaim(
            keys.EVENTS_STREAM,
            keys.RECORDER_GROUP,
            consumer,
            min_idle_time=min_idle_ms,
            start_id=start,
            count=count,
        )
        following = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
        return following, [entry for entry in reply[1] if entry[1]]

    def acknowledge(self, entry_ids: list[Any]) -> None:
        """Acknowledge entries without deleting them (those trimmed away already)."""
        self.client.xack(keys.EVENTS_STREAM, keys.RECORDER_GROUP, *entry_ids)

    def settle(self, entry_ids: list[Any]) -> None:
        """Acknowledge and delete recorded entries: the stream keeps only what is not
        recorded yet."""
        pipe = self.client.pipeline(transaction=False)
        pipe.xack(keys.EVENTS_STREAM, keys.RECORDER_GROUP, *entry_ids)
        pipe.xdel(keys.EVENTS_STREAM, *entry_ids)
        pipe.execute()


def as_recorder_stream(source: RecorderStream | redis.Redis) -> RecorderStream:
    """The stream, given it or a Redis client."""
    return RecorderStream(source) if isinstance(source, redis.Redis) else source
