"""Blobs as files named by their SHA-256 under one folder (share it between hosts)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import BinaryIO

from storage.blob_store import CHUNK_BYTES, BlobInfo, BlobWriteFailed, digest_of, reference

_PARTIAL = ".partial"  # streams being written, named at random until their digest is known
_TMP_PREFIX = ".tmp-"


class FilesystemBlobStore:
    """Blobs at `<root>/<first two hex digits>/<digest>`, written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, data: bytes) -> str:
        """Write atomically (a temporary file flushed to disk, then renamed); identical content
        is stored once. A failed write (a full disk, a file size limit) leaves no temporary
        file behind and raises BlobWriteFailed."""
        ref, _ = self.put_stream([data])
        return ref

    def put_stream(self, chunks: Iterable[bytes]) -> tuple[str, int]:
        """Hash while writing to a temporary file, then rename it to its digest."""
        try:
            partial = self.root / _PARTIAL
            partial.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=partial, prefix=_TMP_PREFIX)
            try:
                with os.fdopen(fd, "wb") as handle:
                    digest, size = _write_hashed(handle, chunks)
                self._settle(Path(tmp), reference(digest))
            except BaseException:
                with suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            raise BlobWriteFailed(exc.errno, f"cannot store a blob: {exc.strerror}") from exc
        return reference(digest), size

    def _settle(self, tmp: Path, ref: str) -> None:
        """Move a written file to its name; when the blob exists, mark it written now (the
        collector's grace period then spares it) and drop the copy."""
        path = self._path(ref)
        try:
            os.utime(path)
        except FileNotFoundError:  # new (or collected a moment ago): this copy is the blob
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, path)
            return
        tmp.unlink()

    def get(self, ref: str) -> bytes:
        """Read a blob; an unknown reference raises FileNotFoundError."""
        return self._path(ref).read_bytes()

    def read_chunks(self, ref: str) -> Iterator[bytes]:
        """Read a blob a chunk at a time (FileNotFoundError at once when unknown)."""
        handle = self._path(ref).open("rb")

        def chunks() -> Iterator[bytes]:
            with handle:
                while chunk := handle.read(CHUNK_BYTES):
                    yield chunk

        return chunks()

    def scan(self) -> Iterator[BlobInfo]:
        """Every blob file, by walking the two-digit folders."""
        if not self.root.is_dir():
            return
        for folder in sorted(self.root.iterdir()):
            if len(folder.name) != 2 or not folder.is_dir():
                continue
            for path in sorted(folder.iterdir()):
                with suppress(FileNotFoundError, ValueError):
                    ref = reference(path.name)
                    digest_of(ref)
                    stat = path.stat()
                    yield BlobInfo(ref, stat.st_size, stat.st_mtime)

    def delete(self, ref: str, written_before: float) -> bool:
        """Unlink the blob unless its mtime is at or after `written_before`."""
        path = self._path(ref)
        try:
            if path.stat().st_mtime >= written_before:
                return False
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    def sweep_partial(self, written_before: float) -> int:
        """Unlink temporary files older than `written_before`."""
        swept = 0
        for tmp in self.root.glob(f"*/{_TMP_PREFIX}*"):
            with suppress(FileNotFoundError):
                if tmp.stat().st_mtime < written_before:
                    tmp.unlink()
                    swept += 1
        return swept

    def location(self) -> str:
        """The folder."""
        return f"file://{self.root}"

    def _path(self, ref: str) -> Path:
        digest = digest_of(ref)
        return self.root / digest[:2] / digest


def _write_hashed(handle: BinaryIO, chunks: Iterable[bytes]) -> tuple[str, int]:
    """Write chunks, flushed to disk; their SHA-256 and total size."""
    hasher = hashlib.sha256()
    size = 0
    for chunk in chunks:
        hasher.update(chunk)
        handle.write(chunk)
        size += len(chunk)
    handle.flush()
    os.fsync(handle.fileno())
    return hasher.hexdigest(), size
