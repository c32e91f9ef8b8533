"""Large node outputs travel through Redis by reference: `pack` stores every string above the
threshold as its own blob (so the same content, say a file's text in `result` and `content`,
is stored once) and the rest of an output that is still too large as a JSON blob; `unpack`
reads them back, as strings or, for nodes that stream, as BlobText references."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from conductor.model.blob_text import BLOB_KEY, TEXT_KIND, BlobText
from storage.blob_files import FilesystemBlobStore
from storage.blob_store import BlobStore, BlobWriteFailed
from storage.memory_blobs import MemoryBlobStore

__all__ = [
    "DEFAULT_THRESHOLD_BYTES",
    "BlobStore",
    "BlobWriteFailed",
    "FilesystemBlobStore",
    "MemoryBlobStore",
    "materialize",
    "open_blob_store",
    "pack",
    "unpack",
]

DEFAULT_THRESHOLD_BYTES = 256 * 1024
_MAX_UTF8_BYTES_PER_CHAR = 4


class BlobUrlError(ValueError):
    """A blob store URL that names no store Conductor knows."""


def open_blob_store(url: str) -> BlobStore:
    """The store at `file:///path` or `s3://bucket/prefix` (S3 needs the `s3` extra)."""
    parts = urlsplit(url)
    if parts.scheme == "file" and parts.path:
        return FilesystemBlobStore(Path(parts.path))
    if parts.scheme == "s3" and parts.netloc:
        try:  # imported here: boto3 is an optional dependency
            from storage.s3_blobs import S3BlobStore  # noqa: PLC0415
        except ImportError as exc:
            message = f"{url} needs boto3: pip install 'conductor[s3]' ({exc})"
            raise BlobUrlError(message) from None

        return S3BlobStore.from_env(parts.netloc, parts.path.strip("/"))
    raise BlobUrlError(
        f"not a blob store URL: {url!r} (expected file:///path or s3://bucket/prefix)"
    )


def pack(value: Any, blobs: BlobStore, threshold_bytes: int = DEFAULT_THRESHOLD_BYTES) -> str:
    """JSON for Redis: large strings as references to their blobs, and the whole value as a
    reference when it is still over the threshold."""
    memo: dict[int, Any] = {}
    text = json.dumps(
        _with_refs(value, blobs, threshold_bytes, memo), ensure_ascii=False, separators=(",", ":")
    )
    encoded = text.encode("utf-8")
    if len(encoded) <= threshold_bytes:
        return text
    return json.dumps({BLOB_KEY: blobs.put(encoded), "bytes": len(encoded)})


def stored_bytes(text: str) -> int:
    """The size of a packed value: its JSON's bytes, or those of the blob it refers to."""
    if len(text) < 200 and BLOB_KEY in text:
        value = json.loads(text)
        if isinstance(value, dict) and isinstance(value.get("bytes"), int):
            return int(value["bytes"])
    return len(text.encode("utf-8"))


def unpack(text: str, blobs: BlobStore, *, lazy: bool = False) -> Any:
    """Inverse of `pack`; with `lazy`, large strings stay BlobText references."""
    value = json.loads(text)
    if isinstance(value, dict) and len(value) == 2 and BLOB_KEY in value and "bytes" in value:
        value = json.loads(blobs.get(value[BLOB_KEY]))
    elif BLOB_KEY not in text:
        return value
    return _resolved(value, blobs, lazy, {})


def materialize(value: Any) -> Any:
    """`value` with every BlobText read into its string (a blob referenced twice is read
    once, and both places hold the one string)."""
    memo: dict[str, str] = {}

    def walk(item: Any) -> Any:
        if isinstance(item, BlobText):
            if item.ref not in memo:
                memo[item.ref] = item.text()
            return memo[item.ref]
        if isinstance(item, dict):
            return {key: walk(v) for key, v in item.items()}
        if isinstance(item, list | tuple):
            return [walk(v) for v in item]
        return item

    return walk(value)


def _with_refs(value: Any, blobs: BlobStore, threshold: int, memo: dict[int, Any]) -> Any:
    if isinstance(value, BlobText):
        return value.reference()
    if isinstance(value, str):
        if len(value) * _MAX_UTF8_BYTES_PER_CHAR <= threshold:
            return value
        if id(value) not in memo:  # one string in two places is hashed once
            memo[id(value)] = _text_ref(value, blobs, threshold)
        return memo[id(value)]
    if isinstance(value, dict):
        return {key: _with_refs(v, blobs, threshold, memo) for key, v in value.items()}
    if isinstance(value, list | tuple):
        return [_with_refs(v, blobs, threshold, memo) for v in value]
    return value


def _text_ref(value: str, blobs: BlobStore, threshold: int) -> Any:
    encoded = value.encode("utf-8")
    if len(encoded) <= threshold:
        return value
    return {BLOB_KEY: blobs.put(encoded), "bytes": len(encoded), "kind": TEXT_KIND}


def _resolved(value: Any, blobs: BlobStore, lazy: bool, memo: dict[str, Any]) -> Any:
    if isinstance(value, dict):
        if len(value) == 3 and value.get("kind") == TEXT_KIND and BLOB_KEY in value:
            ref = value[BLOB_KEY]
            if ref not in memo:
                blob = BlobText(ref, int(value["bytes"]), blobs)
                memo[ref] = blob if lazy else blob.text()
            return memo[ref]
        return {key: _resolved(v, blobs, lazy, memo) for key, v in value.items()}
    if isinstance(value, list):
        return [_resolved(v, blobs, lazy, memo) for v in value]
    return value
