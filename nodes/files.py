"""Paths confined to the files root, which works like a chroot: an absolute path such as
`/data/sample.csv` names `<files root>/data/sample.csv`. No `..` and no symlink leads out."""

from __future__ import annotations

import os
from pathlib import Path

from nodes.errors import NodeError


class OutsideFilesRoot(NodeError):
    """A path that would leave CONDUCTOR_FILES_ROOT."""

    code = "VALIDATION_FAILED"
    retryable = False


def resolve_in_root(root: Path, path: str) -> Path:
    """`path` under `root`, symlinks followed; anything that ends up outside is refused.

    A relative path and an absolute one both start at the root (Atomiton's flows write
    `/data/sample.csv`); an absolute path that already names a place under the root, as the
    host sees it, is taken as it is. Messages never show the host's root."""
    if not path or "\x00" in path:
        raise OutsideFilesRoot(f"invalid path {path!r}")
    base = root.resolve()
    try:
        resolved = (base / _inside(root, base, path)).resolve()
    except (OSError, RuntimeError):
        raise OutsideFilesRoot(f"cannot resolve {path!r} (a symlink loop?)") from None
    if resolved == base or base in resolved.parents:
        return resolved
    raise OutsideFilesRoot(f"path {path!r} is outside the files root (CONDUCTOR_FILES_ROOT)")


def _inside(root: Path, base: Path, path: str) -> str:
    """`path` relative to the root: a host path under the root loses the root's prefix, any
    other absolute path loses its leading slashes. `..` is kept, so it is caught after."""
    if not os.path.isabs(path):
        return path
    normal = os.path.normpath(path)
    for prefix in {str(root), str(base), os.path.normpath(str(root.absolute()))}:
        if normal == prefix or normal.startswith(prefix.rstrip("/") + "/"):
            return os.path.relpath(normal, prefix)
    return path.lstrip("/")
