"""Safe loading of Blueprint files: YAML or JSON, size-, depth- and alias-limited."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from conductor.blueprint import Blueprint
from conductor.problems import ErrorCode, InvalidBlueprint, Problem, join_path

MAX_BYTES = 5 * 1024 * 1024
MAX_DEPTH = 100
MAX_EXPANDED_NODES = 200_000


class _SafeLoader(yaml.SafeLoader):
    """safe_load's loader, minus explicit tags and timestamp parsing (values stay JSON types)."""

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event: Any = self.peek_event()  # type: ignore[no-untyped-call]
        tag = getattr(event, "tag", None)
        if tag not in (None, "!"):
            raise yaml.MarkedYAMLError(
                problem=f"YAML tags are not allowed (found {tag!r})",
                problem_mark=event.start_mark,
            )
        return super().compose_node(parent, index)


# Plain scalars resolve as in YAML 1.2's core schema, which the Atomiton editor (js-yaml)
# writes: `on`/`yes` stay strings, `12:30` is not a number, dates stay strings.
_CORE_SCHEMA = [
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        "tag:yaml.org,2002:float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+.0123456789",
    ),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
]
_SafeLoader.yaml_implicit_resolvers = {}
for _tag, _pattern, _first in _CORE_SCHEMA:
    _SafeLoader.add_implicit_resolver(_tag, re.compile(_pattern), list(_first))


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    """Decimal or 0x hex, as in YAML 1.2 (no 1.1 octal `010` = 8)."""
    text = str(loader.construct_scalar(node))
    return int(text, 16) if text.startswith("0x") else int(text, 10)


_SafeLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def _measure(node: yaml.Node, memo: dict[int, tuple[int, int]], stack: set[int]) -> tuple[int, int]:
    """Return (height, expanded size) of a composed YAML node; aliases count in full."""
    key = id(node)
    if key in memo:
        return memo[key]
    if key in stack:
        raise _Rejected("a YAML alias refers to itself (recursive structure)")
    stack.add(key)
    children: list[yaml.Node] = []
    if isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    elif isinstance(node, yaml.MappingNode):
        children = [part for pair in node.value for part in pair]
    height, size = 1, 1
    for child in children:
        child_height, child_size = _measure(child, memo, stack)
        height, size = max(height, child_height + 1), size + child_size
        if height > MAX_DEPTH:
            raise _Rejected(f"nesting is deeper than {MAX_DEPTH} levels")
        if size > MAX_EXPANDED_NODES:
            raise _Rejected(f"more than {MAX_EXPANDED_NODES} values once aliases are expanded")
    stack.discard(key)
    memo[key] = (height, size)
    return height, size


class _Rejected(Exception):
    """An unsafe document, with the reason."""


def _depth(value: Any, level: int = 1) -> int:
    """Nesting depth of plain JSON data, stopping once past the limit."""
    if level > MAX_DEPTH or not isinstance(value, dict | list):
        return level
    items = value.values() if isinstance(value, dict) else value
    return max((_depth(item, level + 1) for item in items), default=level)


def _parse_yaml(text: str) -> Any:
    loader = _SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        _measure(root, {}, set())
        return loader.construct_document(root)
    finally:
        loader.dispose()


def parse_document(text: str, *, json_only: bool = False) -> Any:
    """Parse Blueprint text (JSON or YAML) into plain data, refusing anything unsafe."""
    if len(text.encode("utf-8", errors="replace")) > MAX_BYTES:
        raise _problem(f"the document is larger than {MAX_BYTES // (1024 * 1024)} MiB")
    try:
        data = json.loads(text) if json_only else _parse_yaml(text)
    except _Rejected as exc:
        raise _problem(str(exc)) from None
    except RecursionError:  # the parsers recurse per level: far past our limit in any case
        raise _problem(f"nesting is deeper than {MAX_DEPTH} levels") from None
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise _problem(f"not valid {'JSON' if json_only else 'YAML'}: {exc}") from None
    if _depth(data) > MAX_DEPTH:
        raise _problem(f"nesting is deeper than {MAX_DEPTH} levels")
    return data


def blueprint_from_data(data: Any) -> Blueprint:
    """Turn parsed data into a Blueprint model, naming every field that does not fit."""
    if not isinstance(data, dict):
        raise _problem("a Blueprint must be a mapping with id, name and nodes")
    if _depth(data) > MAX_DEPTH:  # data that did not come through parse_document (HTTP, Celery)
        raise _problem(f"nesting is deeper than {MAX_DEPTH} levels")
    try:
        return Blueprint.model_validate(data)
    except ValidationError as exc:
        raise InvalidBlueprint(
            [
                Problem(
                    path=join_path(*err["loc"]),
                    code=ErrorCode.VALIDATION_FAILED,
                    message=err["msg"],
                )
                for err in exc.errors()
            ]
        ) from None


def load_blueprint_text(text: str, *, json_only: bool = False) -> Blueprint:
    """Parse and model a Blueprint from text."""
    return blueprint_from_data(parse_document(text, json_only=json_only))


def load_blueprint_file(path: Path) -> Blueprint:
    """Read a Blueprint file (.json is parsed as JSON, anything else as YAML)."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise _problem(f"cannot read {path}: {exc.strerror}") from None
    if size > MAX_BYTES:
        raise _problem(f"{path} is larger than {MAX_BYTES // (1024 * 1024)} MiB")
    text = path.read_text(encoding="utf-8", errors="replace")
    return load_blueprint_text(text, json_only=path.suffix.lower() == ".json")


def _problem(message: str) -> InvalidBlueprint:
    return InvalidBlueprint([Problem(path="$", code=ErrorCode.VALIDATION_FAILED, message=message)])
