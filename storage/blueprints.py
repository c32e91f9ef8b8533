"""The Blueprint store: named, revisioned Blueprints behind `/v1/blueprints`.

`BlueprintStore` is the interface; `FilesystemBlueprintStore` (CONDUCTOR_BLUEPRINTS_DIR) is the
real one and `MemoryBlueprintStore` its in-memory twin. The store checks only that a Blueprint is
safe, well-formed data with a usable id; validating it against the node registry is the caller's
job. On disk every revision is one immutable file, `<root>/<id>/<revision>.json`, published with
`os.link` so that it appears complete or not at all and two writers can never take one number.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import contextlib
import json
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple, Protocol, TypeAlias

from pydantic import BaseModel, ConfigDict, field_serializer

from conductor.model.blueprint import Blueprint
from conductor.model.loader import blueprint_from_data, load_blueprint_text, parse_document
from conductor.model.problems import ErrorCode, InvalidBlueprint, Problem

MAX_ID_CHARS = 200
MAX_ID_BYTES = 255  # a file name on common file systems
MAX_LIST_LIMIT = 1000  # the HTTP API allows limit up to this; more is clamped
DEFAULT_VERSION = "1"
_LATEST = "latest"  # hint: the newest revision number, possibly stale (see _latest_revision)
_TRASH_PREFIX = ".trash-"
_ATTEMPTS = 100

# What create/replace accept: a model, Blueprint text (YAML or JSON), or parsed JSON data.
BlueprintSource: TypeAlias = Blueprint | str | Mapping[str, Any]


class BlueprintStoreError(Exception):
    """Something went wrong in the Blueprint store."""


class BlueprintNotFound(BlueprintStoreError):
    """No Blueprint with this id (or no such revision of it)."""

    def __init__(self, blueprint_id: str, revision: int | None = None) -> None:
        which = "" if revision is None else f" revision {revision}"
        self.blueprint_id, self.revision = blueprint_id, revision
        self.message = f"Blueprint {blueprint_id!r}{which} not found"
        super().__init__(self.message)


class BlueprintExists(BlueprintStoreError):
    """A Blueprint with this id is already stored."""

    def __init__(self, blueprint_id: str) -> None:
        self.blueprint_id = blueprint_id
        self.message = f"a Blueprint with id {blueprint_id!r} already exists"
        super().__init__(self.message)


class InvalidBlueprintId(BlueprintStoreError, InvalidBlueprint):
    """An id that cannot be stored, or a body id that differs from the path id.

    Also an InvalidBlueprint whose one problem names the field `id`."""

    def __init__(self, blueprint_id: str, reason: str) -> None:
        self.blueprint_id = blueprint_id
        self.message = f"invalid Blueprint id {blueprint_id[:MAX_ID_CHARS]!r}: {reason}"
        super().__init__([Problem(path="id", code=ErrorCode.VALIDATION_FAILED, message=reason)])


class InvalidCursor(BlueprintStoreError):
    """A listing cursor this store did not hand out."""

    def __init__(self, cursor: str) -> None:
        self.cursor = cursor
        self.message = f"not a Blueprint listing cursor: {cursor[:100]!r}"
        super().__init__(self.message)


class StoredBlueprint(BaseModel):
    """One revision of a stored Blueprint, with the store's metadata."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    name: str
    version: str
    revision: int
    created_at: float
    updated_at: float
    blueprint: Blueprint

    @field_serializer("blueprint")
    def _dump_blueprint(self, blueprint: Blueprint) -> dict[str, Any]:
        return content_of(blueprint)

    def content(self) -> dict[str, Any]:
        """The Blueprint as JSON data, as it was written (UI fields kept, no added defaults)."""
        return content_of(self.blueprint)


class BlueprintPage(NamedTuple):
    """A page of the listing; pass `next_cursor` back for the next one (None: no more)."""

    items: list[StoredBlueprint]
    next_cursor: str | None


class BlueprintStore(Protocol):
    """Blueprints by id, each with its revisions."""

    def create(self, blueprint: BlueprintSource) -> StoredBlueprint:
        """Store revision 1; BlueprintExists if the id is taken."""

    def get(self, blueprint_id: str, revision: int | None = None) -> StoredBlueprint:
        """The latest revision, or the given one; BlueprintNotFound otherwise."""

    def replace(self, blueprint_id: str, blueprint: BlueprintSource) -> StoredBlueprint:
        """Store the next revision; the body's id must be `blueprint_id`."""

    def delete(self, blueprint_id: str) -> None:
        """Remove the Blueprint and every revision; BlueprintNotFound if absent."""

    def list(self, limit: int = 50, cursor: str | None = None) -> BlueprintPage:
        """Latest revisions sorted by id, in pages (keyset on id)."""


def content_of(blueprint: Blueprint) -> dict[str, Any]:
    """A Blueprint as JSON data: the fields it was given, UI fields included."""
    return blueprint.model_dump(mode="json", exclude_unset=True)


def to_blueprint(source: BlueprintSource) -> Blueprint:
    """A Blueprint model from a model, text or JSON data, through the safe loader."""
    if isinstance(source, Blueprint):
        return source
    if isinstance(source, str):
        return blueprint_from_data(_parse_text(source))
    try:
        text = json.dumps(source, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        problem = Problem(path="$", code=ErrorCode.VALIDATION_FAILED, message=f"not JSON: {exc}")
        raise InvalidBlueprint([problem]) from None
    return load_blueprint_text(text, json_only=True)


def _parse_text(text: str) -> Any:
    """JSON when it looks like JSON (YAML refuses JSON indented with tabs), else YAML."""
    if text.lstrip().startswith("{"):
        with contextlib.suppress(InvalidBlueprint):  # perhaps a YAML flow mapping
            return parse_document(text, json_only=True)
    return parse_document(text)


def check_id(blueprint_id: str) -> str:
    """Return the id if it is safe as a folder name; raise InvalidBlueprintId otherwise."""
    reason = _unsafe_id_reason(blueprint_id)
    if reason:
        raise InvalidBlueprintId(blueprint_id, reason)
    return blueprint_id


def _unsafe_id_reason(blueprint_id: str) -> str | None:
    if not blueprint_id:
        return "the id is empty"
    if len(blueprint_id) > MAX_ID_CHARS:
        return f"the id is longer than {MAX_ID_CHARS} characters"
    if any(char in "/\\" or ord(char) < 0x20 or ord(char) == 0x7F for char in blueprint_id):
        return "the id contains a slash, a backslash, NUL or another control character"
    if ".." in blueprint_id or blueprint_id.startswith("."):
        return "the id contains '..' or starts with '.'"
    try:
        encoded = blueprint_id.encode("utf-8")
    except UnicodeEncodeError:
        return "the id is not valid Unicode"
    return f"the id is longer than {MAX_ID_BYTES} bytes" if len(encoded) > MAX_ID_BYTES else None


def _new_revision(
    blueprint: Blueprint, revision: int, created_at: float | None = None
) -> StoredBlueprint:
    now = time.time()
    return StoredBlueprint(
        id=blueprint.id,
        name=blueprint.name,
        version=blueprint.version or DEFAULT_VERSION,
        revision=revision,
        created_at=now if created_at is None else created_at,
        updated_at=now,
        blueprint=blueprint,
    )


def _checked_replacement(blueprint_id: str, source: BlueprintSource) -> Blueprint:
    check_id(blueprint_id)
    blueprint = to_blueprint(source)
    if blueprint.id != blueprint_id:
        reason = f"the Blueprint's id {blueprint.id!r} does not match {blueprint_id!r} in the path"
        raise InvalidBlueprintId(blueprint.id, reason)
    return blueprint


def _encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode("utf-8")).decode("ascii").rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return raw.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursor(cursor) from None


def _page(
    ids: builtins.list[str],
    limit: int,
    cursor: str | None,
    read: Callable[[str], StoredBlueprint | None],
) -> BlueprintPage:
    """Up to `limit` Blueprints with ids after the cursor's; `read` gives None for a gone one."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    after = None if cursor is None else _decode_cursor(cursor)
    candidates = sorted(i for i in ids if after is None or i > after)
    items: builtins.list[StoredBlueprint] = []
    for blueprint_id in candidates:
        if len(items) == min(limit, MAX_LIST_LIMIT):
            return BlueprintPage(items, _encode_cursor(items[-1].id))
        stored = read(blueprint_id)
        if stored is not None:
            items.append(stored)
    return BlueprintPage(items, None)


class FilesystemBlueprintStore:
    """Blueprints as files under one folder: `<root>/<id>/<revision>.json`, each file the
    StoredBlueprint JSON of that revision, and `<root>/<id>/latest` a hint to the newest."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def create(self, blueprint: BlueprintSource) -> StoredBlueprint:
        """Publish revision 1; of concurrent creators exactly one wins."""
        model = to_blueprint(blueprint)
        directory = self._dir(model.id)
        stored = _new_revision(model, 1)
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

    def replace(self, blueprint_id: str, blueprint: BlueprintSource) -> StoredBlueprint:
        """Publish the next revision; concurrent replacers each get their own number."""
        model = _checked_replacement(blueprint_id, blueprint)
        directory = self._dir(blueprint_id)
        for _ in range(_ATTEMPTS):
            current = self.get(blueprint_id)
            stored = _new_revision(model, current.revision + 1, current.created_at)
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
        return _page(self._ids(), limit, cursor, self._get_or_none)

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
        return [e.name for e in entries if _unsafe_id_reason(e.name) is None and e.is_dir()]

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

    def create(self, blueprint: BlueprintSource) -> StoredBlueprint:
        """Store revision 1 unless the id is taken."""
        model = to_blueprint(blueprint)
        check_id(model.id)
        stored = _new_revision(model, 1)
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

    def replace(self, blueprint_id: str, blueprint: BlueprintSource) -> StoredBlueprint:
        """Append the next revision."""
        model = _checked_replacement(blueprint_id, blueprint)
        with self._lock:
            revisions = self._revisions.get(blueprint_id)
            if not revisions:
                raise BlueprintNotFound(blueprint_id)
            current = StoredBlueprint.model_validate_json(revisions[-1])
            stored = _new_revision(model, current.revision + 1, current.created_at)
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
        return _page(ids, limit, cursor, self._get_or_none)

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
