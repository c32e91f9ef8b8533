"""Safe loading of Blueprint files: YAML or JSON, size-, depth- and alias-limited."""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from conductor.model.blueprint import Blueprint
from conductor.model.problems import ErrorCode, InvalidBlueprint, Problem, join_path

MAX_BYTES = 5 * 1024 * 1024
MAX_DEPTH = 100
# YAML is parsed at about 100,000 values a second: beyond this, send JSON (parsed in C).
MAX_EXPANDED_NODES = 100_000
MAX_DIGITS = sys.get_int_max_str_digits() or 4300


class _SafeLoader(yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader):  # type: ignore[misc]
    """safe_load's loader, minus explicit tags and timestamp parsing (values stay JSON types)."""

    # Explicit tags are refused after composing (_measure): every node's tag must be one the
    # core schema's resolver gives, and construction is SafeConstructor's in any case.


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


class TooLong:
    """An integer with more digits than Python converts (refused with its path)."""

    def __init__(self, digits: int) -> None:
        self.digits = digits


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int | TooLong:
    """Decimal or 0x hex, as in YAML 1.2 (no 1.1 octal `010` = 8)."""
    text = str(loader.construct_scalar(node))
    if len(text) > MAX_DIGITS:
        return TooLong(len(text))
    return int(text, 16) if text.startswith("0x") else int(text, 10)


_SafeLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)


_CORE_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "seq", "map")
)


def _measure(node: yaml.Node, memo: dict[int, tuple[int, int]], stack: set[int]) -> tuple[int, int]:
    """Return (height, expanded size) of a composed YAML node; aliases count in full."""
    key = id(node)
    if key in memo:
        return memo[key]
    if key in stack:
        raise _Rejected("a YAML alias refers to itself (recursive structure)")
    if node.tag not in _CORE_TAGS:
        mark = node.start_mark
        raise _Rejected(
            f"YAML tags are not allowed (found {node.tag!r} at line {mark.line + 1}, "
            f"column {mark.column + 1})"
        )
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
            mark = child.start_mark
            raise _Rejected(
                f"nesting is deeper than {MAX_DEPTH} levels "
                f"(at line {mark.line + 1}, column {mark.column + 1})"
            )
        if size > MAX_EXPANDED_NODES:
            raise _Rejected(f"more than {MAX_EXPANDED_NODES} values once aliases are expanded")
    stack.discard(key)
    memo[key] = (height, size)
    return height, size


class _Rejected(Exception):
    """An unsafe document, with the reason."""


def _scan(value: Any) -> str | None:
    """One pass over plain data: "deep" when nesting passes the limit, "number" at a number
    JSON cannot carry, else None (iterative: no recursion limit, no paths until needed)."""
    stack, found = [(value, 1)], None
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            children = list(item.values() if isinstance(item, dict) else item)
            if children and level >= MAX_DEPTH:
                return "deep"  # before "number": finding a number's path recurses
            stack.extend((child, level + 1) for child in children)
        elif isinstance(item, TooLong) or (isinstance(item, float) and not math.isfinite(item)):
            found = "number"
    return found


def _bad_number(value: Any, at: tuple[str | int, ...] = ()) -> Problem | None:
    """The first number JSON cannot carry (NaN, infinities, too many digits), by its path."""
    if isinstance(value, float) and not math.isfinite(value):
        return Problem(
            path=join_path(*at),
            code=ErrorCode.VALIDATION_FAILED,
            message=f"{value} is not a number JSON can carry: write a finite number",
        )
    if isinstance(value, TooLong):
        return Problem(
            path=join_path(*at),
            code=ErrorCode.VALIDATION_FAILED,
            message=f"a number with {value.digits} digits (at most {MAX_DIGITS})",
        )
    if isinstance(value, dict | list):
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            found = _bad_number(item, (*at, key))
            if found is not None:
                return found
    return None


def _estimate_values(text: str) -> int:
    """An estimate of the values in a YAML text, from the characters that separate them; cheap
    enough to refuse a huge document before the (slow) parser sees it."""
    return 1 + sum(text.count(mark) for mark in ("\n", ",", ":", "- ", "[", "{"))


def _parse_yaml(text: str) -> Any:
    if _estimate_values(text) > MAX_EXPANDED_NODES * 3 // 2:
        raise _Rejected(
            f"more than {MAX_EXPANDED_NODES} values: too large for YAML, send it as JSON"
        )
    loader = _SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        _measure(root, {}, set())
        return loader.construct_document(root)
    finally:
        loader.dispose()


def _json_int(text: str) -> int | TooLong:
    return TooLong(len(text)) if len(text) > MAX_DIGITS else int(text)


def parse_json(text: str) -> Any:
    """JSON as Python data; NaN, infinities and over-long integers are kept as markers for
    `parse_document` to refuse by path (json raises ValueError on them, naming nothing)."""
    return json.loads(text, parse_int=_json_int, parse_constant=float)


def parse_document(text: str, *, json_only: bool = False) -> Any:
    """Parse Blueprint text (JSON or YAML) into plain data, refusing anything unsafe."""
    if len(text.encode("utf-8", errors="replace")) > MAX_BYTES:
        raise _problem(f"the document is larger than {MAX_BYTES // (1024 * 1024)} MiB")
    return _parse(text, json_only=json_only)


def parse_json_value(text: str) -> Any:
    """One JSON value (a command line's input, say), refused like a document when it nests too
    deep or holds a number JSON cannot carry; json.JSONDecodeError when it is not JSON."""
    try:
        data = parse_json(text)
    except RecursionError:
        raise _problem(f"nesting is deeper than {MAX_DEPTH} levels") from None
    _ensure_plain(data, text)
    return data


def ensure_plain_inputs(inputs: Mapping[str, Any]) -> None:
    """Refuse execution inputs nested deeper than the document limit or holding a number JSON
    cannot carry, by their path under `inputs` (submitters that skip the JSON parser: Celery's
    send_task, Python callers)."""
    data = dict(inputs)
    found = _scan(data)
    if found == "deep":
        message = f"nesting is deeper than {MAX_DEPTH} levels: pass large data by reference"
        raise InvalidBlueprint(
            [Problem(path="inputs", code=ErrorCode.VALIDATION_FAILED, message=message)]
        )
    bad = _bad_number(data, ("inputs",)) if found == "number" else None
    if bad is not None:
        raise InvalidBlueprint([bad])


def parse_json_bytes(raw: bytes) -> Any:
    """A JSON request body (its size already limited) as plain data, refused like a file."""
    return _parse(decode_utf8(raw), json_only=True)


def _parse(text: str, *, json_only: bool) -> Any:
    """Parse without the size check: nesting, numbers and YAML's limits are checked."""
    try:
        data = parse_json(text) if json_only else _parse_yaml(text)
    except _Rejected as exc:
        raise _problem(str(exc)) from None
    except RecursionError:  # the parsers recurse per level: far past our limit in any case
        raise _problem(f"nesting is deeper than {MAX_DEPTH} levels{_deep_at(text)}") from None
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        if "maximum nesting depth" in str(exc):  # libyaml's own limit (1000)
            raise _problem(f"nesting is deeper than {MAX_DEPTH} levels{_deep_at(text)}") from None
        raise _problem(f"not valid {'JSON' if json_only else 'YAML'}: {exc}") from None
    _ensure_plain(data, text)
    return data


_BRACKETS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _deep_at(text: str) -> str:
    """Where flow-style nesting first passes the limit (only looked for once refused)."""
    depth = 0
    for match in _BRACKETS.finditer(text):
        token = match.group()
        depth += 1 if token in "[{" else -1 if token in "]}" else 0
        if depth > MAX_DEPTH:
            return f" (at {_position(text, match.start())})"
    return ""


def _position(text: str, offset: int) -> str:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return f"line {line}, column {column}"


def decode_utf8(raw: bytes) -> str:
    """Bytes as UTF-8 text, refusing anything else with the offending byte's offset."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        text = raw[: exc.start].decode("utf-8")
        raise _problem(
            f"not UTF-8: byte 0x{raw[exc.start]:02x} at offset {exc.start} "
            f"({_position(text, len(text))}); save the file as UTF-8"
        ) from None


def _ensure_plain(data: Any, text: str = "") -> None:
    """Refuse data nested too deep, or holding a number JSON cannot carry (by its path)."""
    found = _scan(data)
    if found == "deep":
        raise _problem(f"nesting is deeper than {MAX_DEPTH} levels{_deep_at(text)}")
    bad = _bad_number(data) if found == "number" else None
    if bad is not None:
        raise InvalidBlueprint([bad])


def blueprint_from_data(data: Any) -> Blueprint:
    """Turn data that did not come through parse_document (HTTP, Celery) into a Blueprint."""
    _ensure_plain(data)
    return _model(data)


def _model(data: Any) -> Blueprint:
    """Turn parsed data into a Blueprint model, naming every field that does not fit."""
    if not isinstance(data, dict):
        raise _problem("a Blueprint must be a mapping with id, name and nodes")
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
    return _model(parse_document(text, json_only=json_only))


def load_blueprint_file(path: Path) -> Blueprint:
    """Read a Blueprint file (.json is parsed as JSON, anything else as YAML)."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise _problem(f"cannot read {path}: {exc.strerror}") from None
    if size > MAX_BYTES:
        raise _problem(f"{path} is larger than {MAX_BYTES // (1024 * 1024)} MiB")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise _problem(f"cannot read {path}: {exc.strerror}") from None
    text = decode_utf8(raw)
    return load_blueprint_text(text, json_only=path.suffix.lower() == ".json")


def _problem(message: str) -> InvalidBlueprint:
    return InvalidBlueprint([Problem(path="$", code=ErrorCode.VALIDATION_FAILED, message=message)])
