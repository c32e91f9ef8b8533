"""The Blueprint store: named, revisioned Blueprints behind `/v1/blueprints`.

`BlueprintStore` (storage/blueprint_records.py) is the interface; `FilesystemBlueprintStore`
(CONDUCTOR_BLUEPRINTS_DIR) is the real one and `MemoryBlueprintStore` its in-memory twin. The
store checks only that a Blueprint is safe, well-formed data with a usable id; validating it
against the node registry is the caller's job. On disk every revision is one immutable file,
`<root>/<id>/<revision>.json`, published with `os.link` so that it appears complete or not at
all and two writers can never take one number.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import shutil
import tempfile
import threading
import uuid
from pathlib import Path

from storage.blueprint_records import (
    MAX_LIST_LIMIT,
    BlueprintExists,
    BlueprintInput,
    BlueprintNotFound,
    BlueprintPage,
    BlueprintStore,
    BlueprintStoreError,
    InvalidBlueprintId,
    StoredBlueprint,
    check_id,
    checked_replacement,
    content_of,
    new_revision,
    page_of,
    to_blueprint,
    unsafe_id_reason,
)

__all__ = [
    "MAX_LIST_LIMIT",
    "BlueprintExists",
    "BlueprintInput",
    "BlueprintNotFound",
    "BlueprintPage",
    "BlueprintStore",
    "BlueprintStoreError",
    "FilesystemBlueprintStore",
    "InvalidBlueprintId",
    "MemoryBlueprintStore",
    "StoredBlueprint",
    "check_id",
    "content_of",
    "open_blueprint_store",
    "to_blueprint",
]

_LATEST = "latest"  # hint: the newest revision number, possibly stale (see _latest_revision)
_TRASH_PREFIX = ".trash-"
_ATTEMPTS = 100


class FilesystemBlueprintStore:
    """Blueprints as files under one folder: `<root>/<id>/<revision>.json`, each file the
    StoredBlueprint JSON of that revision, and `<root>/<id>/latest` a hint to the newest."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def create(self, blueprint: BlueprintInput) -> StoredBlueprint:
        """Publish revision 1; of concurrent creators exactly one wins."""
        model = to_blueprint(blueprint)
        directory = self._dir(model.id)
        stored = new_revision(model, 1)
        for _ in range(_ATTEMPTS):
            try:
                directory.mkdir(parents=True, exist_ok=True)
                if not _publish(directory, _revision_name(1), _dump(stored)):
                    raise BlueprintExists(model.id)
            except FileNotFoundError:  # a concurrent delete moved the folder away: again
                continue
            _write_hint(directory, 1)
            return stored
        raise BlueprintStoreError(f"could not create Blueprint {model.id!r}: the folder vanished")

    def get(self, blueprint_id: str, revision: int | None = None) -> StoredBlueprint:
        """Read the latest revision (or the one asked for)."""
        directory = self._dir(blueprint_id)
        number = _latest_revision(directory) if revision is None else revision
        stored = _read(directory, number) if number >= 1 else None
        if stored is None or stored.id != blueprint_id:  # != : a case-insensitive file system
            raise BlueprintNotFound(blueprint_id, revision)
        return stored

    def replace(self, blueprint_id: str, blueprint: BlueprintInput) -> StoredBlueprint:
        """Publish the next revision; concurrent replacers each get their own number."""
        model = checked_replacement(blueprint_id, blueprint)
        directory = self._dir(blueprint_id)
        for _ in range(_ATTEMPTS):
            current = self.get(blueprint_id)
            stored = new_revision(model, current.revision + 1, current.created_at)
            try:
                published = _publish(directory, _revision_name(stored.revision), _dump(stored))
            except FileNotFoundError:  # deleted meanwhile
                raise BlueprintNotFound(blueprint_id) from None
            if published:
                _write_hint(directory, stored.revision)
                return stored
        raise BlueprintStoreError(f"could not replace Blueprint {blueprint_id!r}: too busy")

    def delete(self, blueprint_id: str) -> None:
        """Move the folder aside in one rename, then remove it."""
        directory = self._dir(blueprint_id)
        self.get(blueprint_id)
        trash = self.root / f"{_TRASH_PREFIX}{uuid.uuid4().hex}"
        try:
            directory.rename(trash)
        except FileNotFoundError:
            raise BlueprintNotFound(blueprint_id) from None
        shutil.rmtree(trash, ignore_errors=True)

    def list(self, limit: int = 50, cursor: str | None = None) -> BlueprintPage:
        """The latest revision of each Blueprint, sorted by id."""
        return page_of(self._ids(), limit, cursor, self._get_or_none)

    def sweep(self) -> None:
        """Remove what interrupted deletes left behind."""
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self.root):
                if entry.name.startswith(_TRASH_PREFIX):
                    shutil.rmtree(entry.path, ignore_errors=True)

    def _dir(self, blueprint_id: str) -> Path:
        return self.root / check_id(blueprint_id)

    def _ids(self) -> builtins.list[str]:
        try:
            entries = builtins.list(os.scandir(self.root))
        except FileNotFoundError:
            return []
        return [e.name for e in entries if unsafe_id_reason(e.name) is None and e.is_dir()]

    def _get_or_none(self, blueprint_id: str) -> StoredBlueprint | None:
        try:
            return self.get(blueprint_id)
        except BlueprintNotFound:  # an empty folder from an interrupted create, or deleted
            return None


def _revision_name(revision: int) -> str:
    return f"{revision}.json"


def _dump(stored: StoredBlueprint) -> bytes:
    return stored.model_dump_json().encode("utf-8")


def _read(directory: Path, revision: int) -> StoredBlueprint | None:
    try:
        text = (directory / _revision_name(revision)).read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return StoredBlueprint.model_validate_json(text)


def _latest_revision(directory: Path) -> int:
    """The newest revision, 0 if none: revisions are published in order without gaps, so
    start at the hint and step forward while the next one exists."""
    try:
        hint = int((directory / _LATEST).read_text(encoding="ascii"))
    except (OSError, ValueError):
        hint = 0
    exists = os.path.exists
    if hint < 1 or not exists(directory / _revision_name(hint)):
        hint = 0
    while exists(directory / _revision_name(hint + 1)):
        hint += 1
    return hint


def _temp_file(directory: Path, data: bytes) -> str:
    """A fully written, flushed temporary file in `directory` (a name readers ignore)."""
    fd, temp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        os.unlink(temp)
        raise
    return temp


def _publish(directory: Path, name: str, data: bytes) -> bool:
    """Make `directory/name` hold `data`, complete, unless it exists (then False)."""
    temp = _temp_file(directory, data)
    try:
        os.link(temp, directory / name)  # atomic, and fails if the name is taken
    except FileExistsError:
        return False
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
    return True


def _write_hint(directory: Path, revision: int) -> None:
    """Point `latest` at a revision (a stale hint is harmless: readers step forward)."""
    with contextlib.suppress(FileNotFoundError):
        temp = _temp_file(directory, str(revision).encode("ascii"))
        try:
            os.replace(temp, directory / _LATEST)
        except FileNotFoundError:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)


class MemoryBlueprintStore:
    """The in-memory twin of FilesystemBlueprintStore (same rules, revisions kept as JSON)."""

    def __init__(self) -> None:
        self._revisions: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def create(self, blueprint: BlueprintInput) -> StoredBlueprint:
        """Store revision 1 unless the id is taken."""
        model = to_blueprint(blueprint)
        check_id(model.id)
        stored = new_revision(model, 1)
        with self._lock:
            if model.id in self._revisions:
                raise BlueprintExists(model.id)
            self._revisions[model.id] = [stored.model_dump_json()]
        return stored

    def get(self, blueprint_id: str, revision: int | None = None) -> StoredBlueprint:
        """The latest revision, or the one asked for."""
        check_id(blueprint_id)
        with self._lock:
            revisions = self._revisions.get(blueprint_id, [])
            number = len(revisions) if revision is None else revision
            if not 1 <= number <= len(revisions):
                raise BlueprintNotFound(blueprint_id, revision)
            text = revisions[number - 1]
        return StoredBlueprint.model_validate_json(text)

    def replace(self, blueprint_id: str, blueprint: BlueprintInput) -> StoredBlueprint:
        """Append the next revision."""
        model = checked_replacement(blueprint_id, blueprint)
        with self._lock:
            revisions = self._revisions.get(blueprint_id)
            if not revisions:
                raise BlueprintNotFound(blueprint_id)
            current = StoredBlueprint.model_validate_json(revisions[-1])
            stored = new_revision(model, current.revision + 1, current.created_at)
            revisions.append(stored.model_dump_json())
        return stored

    def delete(self, blueprint_id: str) -> None:
        """Forget every revision."""
        check_id(blueprint_id)
        with self._lock:
            if self._revisions.pop(blueprint_id, None) is None:
                raise BlueprintNotFound(blueprint_id)

    def list(self, limit: int = 50, cursor: str | None = None) -> BlueprintPage:
        """The latest revision of each Blueprint, sorted by id."""
        with self._lock:
            ids = builtins.list(self._revisions)
        return page_of(ids, limit, cursor, self._get_or_none)

    def _get_or_none(self, blueprint_id: str) -> StoredBlueprint | None:
        try:
            return self.get(blueprint_id)
        except BlueprintNotFound:  # deleted since the ids were read
            return None


def open_blueprint_store(root: Path) -> BlueprintStore:
    """The filesystem store at `root` (CONDUCTOR_BLUEPRINTS_DIR), created if missing."""
    root.mkdir(parents=True, exist_ok=True)
    store = FilesystemBlueprintStore(root)
    store.sweep()
    return store
