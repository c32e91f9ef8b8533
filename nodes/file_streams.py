"""`file-system` read and write of large files through the blob store, a chunk at a time."""

from __future__ import annotations

import os
import tempfile
from contextlib import suppress
from pathlib import Path
from typing import Any

from conductor.model.blob_text import BlobText
from nodes.base import NodeEnvironment
from nodes.blob_streams import as_file_bytes, as_text_bytes, file_chunks


def read_streamed(
    target: Path, encoding: str, shown: str, environment: NodeEnvironment
) -> BlobText | None:
    """A file above the blob threshold, stored as the blob of the string a read gives (never
    held whole); None when it is small or the worker has no blob store."""
    blobs = environment.blobs
    if blobs is None or target.stat().st_size <= environment.blob_threshold_bytes:
        return None
    with target.open("rb") as handle:
        ref, size = blobs.put_stream(as_text_bytes(file_chunks(handle), encoding, shown))
    return BlobText(ref, size, blobs)


def write_streamed(target: Path, content: BlobText, encoding: str, overwrite: bool) -> int:
    """Write a blob's string to `target` through a temporary file beside it, so a failure
    leaves nothing half-written; the bytes written. FileExistsError without `overwrite`."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    written = 0
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in as_file_bytes(content.chunks(), encoding):
                handle.write(chunk)
                written += len(chunk)
        if overwrite:
            os.replace(tmp, target)
        else:  # a link fails when the target exists, as open(..., "x") would
            os.link(tmp, target)
    finally:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
    return written


def blob_as_string(value: Any) -> str:
    """json.dumps' `default` for content holding a BlobText: its string."""
    if isinstance(value, BlobText):
        return value.text()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
