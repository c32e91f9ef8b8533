"""The blob collector's sweep: delete blobs nothing refers to, sparing young ones."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from storage.blob_store import BlobStore


@dataclass(frozen=True)
class Collection:
    """What one pass found and did (sizes in bytes)."""

    location: str
    dry_run: bool
    blobs: int
    bytes: int
    referenced: int
    young: int  # unreferenced, but written within the grace period: kept
    deleted: int
    deleted_bytes: int
    partial_swept: int

    def as_dict(self) -> dict[str, Any]:
        """As JSON for the CLI and logs."""
        return {**asdict(self), "kept_bytes": self.bytes - self.deleted_bytes}


def collect(
    blobs: BlobStore,
    referenced: Callable[[], set[str]],
    *,
    grace_s: float,
    partial_grace_s: float = 0.0,
    dry_run: bool = False,
    now: float | None = None,
) -> Collection:
    """List the blobs, then mark what `referenced` finds (live state and history), then
    delete what is unmarked and older than `grace_s`. Listing comes first: a blob stored
    after it is never a candidate; one stored again since is spared by its new time. A
    partial write is abandoned once older than `partial_grace_s` too (a node writing a
    stream runs at most its time limit)."""
    now = time.time() if now is None else now
    cutoff = now - grace_s
    candidates = list(blobs.scan())
    marked = referenced()
    young = deleted = deleted_bytes = 0
    for info in candidates:
        if info.ref in marked:
            continue
        if info.modified >= cutoff:
            young += 1
        elif dry_run or blobs.delete(info.ref, cutoff):
            deleted += 1
            deleted_bytes += info.size
    return Collection(
        location=blobs.location(),
        dry_run=dry_run,
        blobs=len(candidates),
        bytes=sum(info.size for info in candidates),
        referenced=sum(1 for info in candidates if info.ref in marked),
        young=young,
        deleted=deleted,
        deleted_bytes=deleted_bytes,
        partial_swept=0 if dry_run else blobs.sweep_partial(now - max(grace_s, partial_grace_s)),
    )
