"""The bundle of stores a node run uses."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from storage.blobs import DEFAULT_THRESHOLD_BYTES, BlobStore
from storage.redis_state import RedisStateStore
from storage.retention import expire_execution
from storage.state import StateStore


@dataclass(frozen=True)
class Stores:
    """Execution state, blob storage for large outputs, and a finished execution's retention."""

    state: StateStore
    blobs: BlobStore
    blob_threshold_bytes: int = DEFAULT_THRESHOLD_BYTES
    finished_ttl_s: int | None = None  # None: a finished execution keeps the state's TTL

    def retire(self, execution_id: str) -> None:
        """Let a finished execution's Redis keys expire in `finished_ttl_s` (never later)."""
        if self.finished_ttl_s is not None and isinstance(self.state, RedisStateStore):
            ttl_s = min(self.finished_ttl_s, self.state.ttl_s)
            try:
                expire_execution(self.state.client, execution_id, ttl_s)
            except redis.RedisError:  # the execution is final; its keys keep the longer TTL
                return
