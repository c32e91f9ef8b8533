"""Blueprints as the client takes them (a model, data, a file) turned into request bodies."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeAlias

from conductor.client.errors import InvalidBlueprintError
from conductor.model.blueprint import Blueprint
from conductor.model.loader import MAX_BYTES, parse_document
from conductor.model.problems import ErrorCode, InvalidBlueprint, Problem
from storage.blueprints import content_of

# A Blueprint as the client takes it: a model, parsed data, or the path of a YAML/JSON file.
BlueprintSource: TypeAlias = Blueprint | Mapping[str, Any] | str | os.PathLike[str]


def blueprint_body(blueprint: BlueprintSource) -> dict[str, Any]:
    """A Blueprint as JSON data: a model as written, a mapping as is, a file parsed safely."""
    if isinstance(blueprint, Blueprint):
        return content_of(blueprint)
    if isinstance(blueprint, Mapping):
        return dict(blueprint)
    return _read_blueprint_file(Path(blueprint))


def _read_blueprint_file(path: Path) -> dict[str, Any]:
    """Parse a YAML or JSON Blueprint file as the server would (no tags, aliases bounded)."""
    if not path.is_file():
        raise FileNotFoundError(
            f"no Blueprint file {str(path)!r}: pass a YAML/JSON file path, a dict or a Blueprint"
        )
    try:
        if path.stat().st_size > MAX_BYTES:
            raise InvalidBlueprint(
                [Problem(path="$", code=ErrorCode.VALIDATION_FAILED, message="over 5 MiB")]
            )
        text = path.read_text(encoding="utf-8", errors="replace")
        data = parse_document(text, json_only=path.suffix.lower() == ".json")
    except InvalidBlueprint as exc:
        raise InvalidBlueprintError(
            f"{path} is not a Blueprint file", exc.problems, status=None
        ) from None
    if not isinstance(data, dict):
        problem = Problem(
            path="$", code=ErrorCode.VALIDATION_FAILED, message="not a mapping with id and nodes"
        )
        raise InvalidBlueprintError(f"{path} is not a Blueprint file", [problem], status=None)
    return data
