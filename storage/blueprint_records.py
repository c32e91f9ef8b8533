"""Stored Blueprints: what the Blueprint store keeps and answers, its errors, its interface,
and the rules every implementation shares (ids, revisions, pages)."""

from __future__ import annotations

import base64
import binascii
import builtins
import contextlib
import json
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Protocol, TypeAlias

from pydantic import BaseModel, ConfigDict, field_serializer

from conductor.model.blueprint import Blueprint
from conductor.model.loader import blueprint_from_data, load_blueprint_text, parse_document
from conductor.model.problems import ErrorCode, InvalidBlueprint, Problem
from storage.cursors import InvalidCursor

MAX_ID_CHARS = 200
MAX_ID_BYTES = 255  # a file name on common file systems
MAX_LIST_LIMIT = 1000  # the HTTP API allows limit up to this; more is clamped
DEFAULT_VERSION = "1"

# What create/replace accept: a model, Blueprint text (YAML or JSON), or parsed JSON data.
BlueprintInput: TypeAlias = Blueprint | str | Mapping[str, Any]


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

    def create(self, blueprint: BlueprintInput) -> StoredBlueprint:
        """Store revision 1; BlueprintExists if the id is taken."""

    def get(self, blueprint_id: str, revision: int | None = None) -> StoredBlueprint:
        """The latest revision, or the given one; BlueprintNotFound otherwise."""

    def replace(self, blueprint_id: str, blueprint: BlueprintInput) -> StoredBlueprint:
        """Store the next revision; the body's id must be `blueprint_id`."""

    def delete(self, blueprint_id: str) -> None:
        """Remove the Blueprint and every revision; BlueprintNotFound if absent."""

    def list(self, limit: int = 50, cursor: str | None = None) -> BlueprintPage:
        """Latest revisions sorted by id, in pages (keyset on id)."""


def content_of(blueprint: Blueprint) -> dict[str, Any]:
    """A Blueprint as JSON data: the fields it was given, UI fields included."""
    return blueprint.model_dump(mode="json", exclude_unset=True)


def to_blueprint(source: BlueprintInput) -> Blueprint:
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
    reason = unsafe_id_reason(blueprint_id)
    if reason:
        raise InvalidBlueprintId(blueprint_id, reason)
    return blueprint_id


def unsafe_id_reason(blueprint_id: str) -> str | None:
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


def new_revision(
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


def checked_replacement(blueprint_id: str, source: BlueprintInput) -> Blueprint:
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
        raise InvalidCursor(f"not a Blueprint listing cursor: {cursor[:100]!r}") from None


def page_of(
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
