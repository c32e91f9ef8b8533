"""The bundle of stores a node run uses."""

from __future__ import annotations

from dataclasses import dataclass

from storage.blobs import DEFAULT_THRESHOLD_BYTES, BlobStore
from storage.state import StateStore


@dataclass(frozen=True)
class Stores:
    """Execution state plus blob storage for large outputs."""

    state: StateStore
    blobs: BlobStore
    blob_threshold_bytes: int = DEFAULT_THRESHOLD_BYTES
