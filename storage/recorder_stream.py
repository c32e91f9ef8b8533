"""The recorder's side of the events stream (a Redis Stream with one consumer group): read
new entries, take back unacknowledged ones, and acknowledge-and-delete what was recorded."""

from __future__ import annotations

from typing import Any

import redis

from storage import keys

# One entry: its id and its fields (empty when the entry was trimmed away meanwhile).
Entry = tuple[Any, dict[bytes, bytes]]


class RecorderStream:
    """The `recorder` consumer group on the events stream."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

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
        """Entries no consumer has read yet (waiting up to `block_ms`; None: no wait)."""
        reply: Any = self.client.xreadgroup(
            keys.RECORDER_GROUP, consumer, {keys.EVENTS_STREAM: ">"}, count=count, block=block_ms
        )
        return [entry for _, entries in reply or [] for entry in entries]

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
