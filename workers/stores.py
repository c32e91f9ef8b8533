"""The bundle of stores a node run uses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from storage.blobs import DEFAULT_THRESHOLD_BYTES, BlobStore
from storage.concurrency import ConcurrencySlots
from storage.state import StateStore


@dataclass(frozen=True)
class Stores:
    """Execution state, blob storage for large outputs, and a finished execution's retention."""

    state: StateStore
    blobs: BlobStore
    blob_threshold_bytes: int = DEFAULT_THRESHOLD_BYTES
    finished_ttl_s: int | None = None  # None: a finished execution keeps the state's TTL
    # Concurrency keys' slots (None: no execution is held back), and what sends an execution
    # a freed slot admitted (its canvas; workers.admission).
    slots: ConcurrencySlots | None = None
    admit: Callable[[str], object] | None = None

    def retire(self, execution_id: str) -> None:
        """Let a finished execution's state expire in `finished_ttl_s` (never later)."""
        if self.finished_ttl_s is not None:
            self.state.retire(execution_id, self.finished_ttl_s)
