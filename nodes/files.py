"""Paths confined to the files root, which works like a chroot: an absolute path such as
`/data/sample.csv` names `<files root>/data/sample.csv`. No `..`, no symlink and no hard link
leads out, and paths are at most MAX_PATH_DEPTH levels deep."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from nodes.errors import NodeError


class OutsideFilesRoot(NodeError):
    """A path that would leave CONDUCTOR_FILES_ROOT."""

    code = "VALIDATION_FAILED"
    retryable = False


class PathTooDeep(NodeError):
    """A path of more levels than MAX_PATH_DEPTH."""

    code = "INVALID_PARAMETERS"
    retryable = False


# Folders in a path under the root; Linux allows 4096 bytes, about 2000 one-letter levels,
# which Python's recursive mkdir cannot create.
MAX_PATH_DEPTH = 128


def resolve_in_root(root: Path, path: str, *, content: bool = True) -> Path:
    """`path` under `root`, symlinks followed; anything that ends up outside is refused.

    A relative path and an absolute one both start at the root (Atomiton's flows write
    `/data/sample.csv`); an absolute path that already names a place under the root, as the
    host sees it, is taken as it is. Messages never show the host's root. When the node
    reads or writes the file's `content`, a file with other hard links is refused: one of
    them may be outside the root (a hard link cannot be told from the original)."""
    if not path or "\x00" in path:
        raise OutsideFilesRoot(f"invalid path {path!r}")
    depth = len(PurePosixPath(path).parts)
    if depth > MAX_PATH_DEPTH:
        raise PathTooDeep(f"path has {depth} levels; at most {MAX_PATH_DEPTH} are allowed")
    base = root.resolve()
    try:
        resolved = (base / _inside(root, base, path)).resolve()
    except (OSError, RuntimeError):
        raise OutsideFilesRoot(f"cannot resolve {path!r} (a symlink loop?)") from None
    if resolved != base and base not in resolved.parents:
        raise OutsideFilesRoot(f"path {path!r} is outside the files root (CONDUCTOR_FILES_ROOT)")
    if content:
        refuse_hard_links(resolved, path)
    return resolved


def refuse_hard_links(resolved: Path, shown: str) -> None:
    """Refuse a regular file that has more than one link (name): the other may be outside
    the files root, and reading or writing through this one would reach it."""
    try:
        stat = resolved.stat()
    except OSError:
        return  # nothing there (yet): a new file has one link
    if resolved.is_file() and stat.st_nlink > 1:
        raise OutsideFilesRoot(
            f"{shown!r} has {stat.st_nlink} hard links; a file with other hard links may be "
            "outside the files root, so it is not read or written"
        )


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
