"""Paths confined to the files root: no `..` out of it, no absolute paths outside it, no
symlinks out of it."""

from __future__ import annotations

from pathlib import Path

from nodes.errors import NodeError


class OutsideFilesRoot(NodeError):
    """A path that would leave CONDUCTOR_FILES_ROOT."""

    code = "VALIDATION_FAILED"
    retryable = False


def resolve_in_root(root: Path, path: str) -> Path:
    """`path` (relative to `root`, or absolute under it) resolved with symlinks followed;
    anything that ends up outside `root` is refused. Messages never show the host's root."""
    if not path or "\x00" in path:
        raise OutsideFilesRoot(f"invalid path {path!r}")
    base = root.resolve()
    try:
        resolved = (base / path).resolve()  # an absolute `path` replaces `base` here
    except (OSError, RuntimeError):
        raise OutsideFilesRoot(f"cannot resolve {path!r} (a symlink loop?)") from None
    if resolved == base or base in resolved.parents:
        return resolved
    relative = path.lstrip("/")
    hint = f"; write it relative to the files root, e.g. {relative!r}" if relative != path else ""
    raise OutsideFilesRoot(f"path {path!r} is outside the files root (CONDUCTOR_FILES_ROOT){hint}")
