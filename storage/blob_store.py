"""The blob store interface: content-addressed bytes, written and read as streams."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from typing import NamedTuple, Protocol

CHUNK_BYTES = 1024 * 1024  # how much of a blob is read or written at a time
_ALGORITHM = "sha256"
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")


class BlobInfo(NamedTuple):
    """A stored blob: its reference, size and when it was last written (unix seconds)."""

    ref: str
    size: int
    modified: float


class BlobStore(Protocol):
    """Content-addressed bytes: identical content is stored once, under its SHA-256."""

    def put(self, data: bytes) -> str:
        """Store bytes; return their reference."""

    def put_stream(self, chunks: Iterable[bytes]) -> tuple[str, int]:
        """Store bytes given a chunk at a time, never holding them all; (reference, size)."""

    def get(self, ref: str) -> bytes:
        """The bytes stored under `ref`; an unknown reference raises FileNotFoundError."""

    def read_chunks(self, ref: str) -> Iterator[bytes]:
        """The bytes stored under `ref`, CHUNK_BYTES at a time."""

    def scan(self) -> Iterator[BlobInfo]:
        """Every stored blob (not the partial ones being written)."""

    def delete(self, ref: str, written_before: float) -> bool:
        """Delete a blob unless it was written (or stored again) at or after
        `written_before`; whether it was deleted."""

    def sweep_partial(self, written_before: float) -> int:
        """Delete what writers left half-done before `written_before` (a killed worker's
        temporary file or multipart upload); how many."""

    def location(self) -> str:
        """Where the blobs are, for messages (never with credentials)."""


class BlobWriteFailed(OSError):
    """The blob store could not take a blob (nothing of it was left behind)."""


def reference(digest: str) -> str:
    """The reference of content with this SHA-256 hex digest."""
    return f"{_ALGORITHM}:{digest}"


def digest_of(ref: str) -> str:
    """The hex digest in a reference; ValueError for anything else (no path tricks)."""
    algorithm, _, digest = ref.partition(":")
    if (
        algorithm != _ALGORITHM
        or len(digest) != 64
        or not all(c in "0123456789abcdef" for c in digest)
    ):
        raise ValueError(f"not a blob reference: {ref!r}")
    return digest


def content_ref(data: bytes) -> str:
    """The reference of `data`."""
    return reference(hashlib.sha256(data).hexdigest())
