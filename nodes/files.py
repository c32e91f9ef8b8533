"""Paths confined to the files root: no `..`, no absolute paths outside it, no symlinks out."""

from __future__ import annotations

from pathlib import Path

from nodes.errors import NodeError


class OutsideFilesRoot(NodeError):
    """A path that would leave CONDUCTOR_FILES_ROOT."""

    code = "VALIDATION_FAILED"
    retryable = False


def resolve_in_root(root: Path, path: str) -> Path:
    """`path` (relative to `root`, or absolute under it) resolved with symlinks followed;
    anything that ends up outside `root` is refused."""
    if not path or "\x00" in path:
        raise OutsideFilesRoot(f"invalid path {path!r}")
    base = root.resolve()
    candidate = Path(path)
    if candidate.is_absolute():
        try:
            candidate = candidate.resolve().relative_to(base)
        except ValueError:
            # Atomiton flows write root-relative paths such as /data/x.csv: read them under root.
            candidate = Path(*candidate.parts[1:])
    resolved = (base / candidate).resolve()
    if resolved != base and base not in resolved.parents:
        raise OutsideFilesRoot(
            f"path {path!r} is outside the files root {base} (set CONDUCTOR_FILES_ROOT to "
            "allow another folder)"
        )
    return resolved
