"""The in-memory twin of the blob stores, for tests."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator

from storage.blob_store import CHUNK_BYTES, BlobInfo, content_ref, digest_of


class MemoryBlobStore:
    """Blobs in a dict, with when each was last written."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.written: dict[str, float] = {}

    def put(self, data: bytes) -> str:
        """Keep bytes in a dict."""
        ref = content_ref(data)
        self.blobs[ref] = data
        self.written[ref] = time.time()
        return ref

    def put_stream(self, chunks: Iterable[bytes]) -> tuple[str, int]:
        """Join the chunks (a test's blobs are small) and keep them."""
        data = b"".join(chunks)
        return self.put(data), len(data)

    def get(self, ref: str) -> bytes:
        """Bytes by reference; FileNotFoundError when unknown, as on disk."""
        digest_of(ref)
        try:
            return self.blobs[ref]
        except KeyError:
            raise FileNotFoundError(ref) from None

    def read_chunks(self, ref: str) -> Iterator[bytes]:
        """The bytes in CHUNK_BYTES pieces."""
        data = self.get(ref)
        return (data[i : i + CHUNK_BYTES] for i in range(0, len(data), CHUNK_BYTES))

    def scan(self) -> Iterator[BlobInfo]:
        """Every blob."""
        for ref, data in sorted(self.blobs.items()):
            yield BlobInfo(ref, len(data), self.written[ref])

    def delete(self, ref: str, written_before: float) -> bool:
        """Drop a blob written before `written_before`."""
        if ref not in self.blobs or self.written[ref] >= written_before:
            return False
        del self.blobs[ref], self.written[ref]
        return True

    def sweep_partial(self, written_before: float) -> int:
        """Nothing is ever half-written in memory."""
        return 0

    def location(self) -> str:
        """Nowhere on disk."""
        return "memory://"
