"""A large string kept in the blob store: passed between nodes by reference, read as a stream."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

BLOB_KEY = "$blob"  # a reference's key in stored JSON: {"$blob": "sha256:...", "bytes": n}
TEXT_KIND = "text"  # `kind` of a reference to one string's UTF-8 bytes (not a JSON document)


class BlobReader(Protocol):
    """What a BlobText needs of the blob store."""

    def get(self, ref: str) -> bytes:
        """The bytes stored under `ref`."""

    def read_chunks(self, ref: str) -> Iterator[bytes]:
        """The bytes stored under `ref`, a chunk at a time."""


class BlobWriter(BlobReader, Protocol):
    """What a node that streams needs of the blob store."""

    def put_stream(self, chunks: Iterable[bytes]) -> tuple[str, int]:
        """Store bytes given a chunk at a time; (reference, size)."""


@dataclass(frozen=True)
class BlobText:
    """A string whose UTF-8 bytes are the blob `ref` (`size` bytes): nodes that stream (a
    `file-system` write, an `http-request` body) read it in chunks; others get the string."""

    ref: str
    size: int
    store: BlobReader = field(compare=False, repr=False)

    def text(self) -> str:
        """The whole string (held in memory once)."""
        return self.store.get(self.ref).decode("utf-8")

    def chunks(self) -> Iterator[bytes]:
        """The UTF-8 bytes, a chunk at a time."""
        return self.store.read_chunks(self.ref)

    def reference(self) -> dict[str, object]:
        """How the string is written in stored JSON."""
        return {BLOB_KEY: self.ref, "bytes": self.size, "kind": TEXT_KIND}
