"""Blob storage for large node outputs, which travel through Redis by reference."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from contextlib import suppress
from pathlib import Path
from typing import Any, Protocol

DEFAULT_THRESHOLD_BYTES = 256 * 1024
_REF = "$blob"


class BlobStore(Protocol):
    """Content-addressed bytes."""

    def put(self, data: bytes) -> str:
        """Store bytes; return their reference."""

    def get(self, ref: str) -> bytes:
        """The bytes stored under `ref`."""


class FilesystemBlobStore:
    """Blobs as files named by their SHA-256 under one folder (share it between hosts)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, data: bytes) -> str:
        """Write atomically (a temporary file in the blob's folder, flushed to disk, then
        renamed); identical content is stored once. A failed write (a full disk, a file size
        limit) leaves no temporary file behind and raises BlobWriteFailed."""
        ref = "sha256:" + hashlib.sha256(data).hexdigest()
        path = self._path(ref)
        if not path.exists():
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                _write_atomically(path, data)
            except OSError as exc:
                raise BlobWriteFailed(exc.errno, f"cannot store a blob: {exc.strerror}") from exc
        return ref

    def get(self, ref: str) -> bytes:
        """Read a blob; an unknown reference raises FileNotFoundError."""
        return self._path(ref).read_bytes()

    def _path(self, ref: str) -> Path:
        algorithm, _, digest = ref.partition(":")
        if algorithm != "sha256" or len(digest) != 64 or not digest.isalnum():
            raise ValueError(f"not a blob reference: {ref!r}")
        return self.root / digest[:2] / digest


class BlobWriteFailed(OSError):
    """The blob store could not take a blob (nothing of it was left behind)."""


def _write_atomically(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class MemoryBlobStore:
    """The in-memory twin of FilesystemBlobStore, for tests."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def put(self, data: bytes) -> str:
        """Keep bytes in a dict."""
        ref = "sha256:" + hashlib.sha256(data).hexdigest()
        self.blobs[ref] = data
        return ref

    def get(self, ref: str) -> bytes:
        """Bytes by reference."""
        return self.blobs[ref]


def pack(value: Any, blobs: BlobStore, threshold_bytes: int = DEFAULT_THRESHOLD_BYTES) -> str:
    """JSON for Redis: the value itself, or a reference when it is over the threshold."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    encoded = text.encode("utf-8")
    if len(encoded) <= threshold_bytes:
        return text
    return json.dumps({_REF: blobs.put(encoded), "bytes": len(encoded)})


def stored_bytes(text: str) -> int:
    """The size of a packed value: its JSON's bytes, or those of the blob it refers to."""
    if len(text) < 200 and _REF in text:
        value = json.loads(text)
        if isinstance(value, dict) and isinstance(value.get("bytes"), int):
            return int(value["bytes"])
    return len(text.encode("utf-8"))


def unpack(text: str, blobs: BlobStore) -> Any:
    """Inverse of `pack`."""
    value = json.loads(text)
    if isinstance(value, dict) and len(value) == 2 and _REF in value and "bytes" in value:
        return json.loads(blobs.get(value[_REF]))
    return value
