"""Templates in string parameters: `{{$input.message}}`, `{{$now}}`, `{{$vars.x}}`.

The sandbox is the grammar itself: an expression is a root name followed by mapping keys and
list indexes over plain JSON data. There is no attribute access, call or operator to abuse.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from conductor.model.blob_text import BlobText
from nodes.errors import InvalidParameters
from nodes.output_budget import OutputBudget

_TEMPLATE = re.compile(r"\{\{\s*(.*?)\s*\}\}")
_EXPRESSION = re.compile(r"\$(?P<root>[A-Za-z_]\w*)(?P<rest>(?:\.[\w-]+|\[\d+\])*)$")
_STEP = re.compile(r"\.([\w-]+)|\[(\d+)\]")


def render_value(value: Any, scope: Mapping[str, Any], budget: OutputBudget | None = None) -> Any:
    """Render every template inside strings of `value` (recursing into mappings and lists).
    Text built by templates counts against `budget` (default: 64 MiB), and rendering stops
    as soon as it is spent."""
    budget = budget or OutputBudget(what="the text rendered from templates")
    if isinstance(value, str):
        return render_string(value, scope, budget)
    if isinstance(value, dict):
        return {key: render_value(item, scope, budget) for key, item in value.items()}
    if isinstance(value, list):
        return [render_value(item, scope, budget) for item in value]
    return value


def render_string(text: str, scope: Mapping[str, Any], budget: OutputBudget | None = None) -> Any:
    """A string that is one template keeps the value's type; otherwise values are inserted
    (their text counted against `budget`)."""
    if "{{" not in text:
        return text
    found = list(_TEMPLATE.finditer(text))
    if len(found) == 1 and found[0].span() == (0, len(text)):
        return evaluate(found[0].group(1), scope)
    budget = budget or OutputBudget(what="the text rendered from templates")
    budget.charge_text(len(text))
    return _TEMPLATE.sub(lambda m: _charged(_as_text(evaluate(m.group(1), scope)), budget), text)


def _charged(text: str, budget: OutputBudget) -> str:
    budget.charge_text(len(text))
    return text


def evaluate(expression: str, scope: Mapping[str, Any]) -> Any:
    """Look up `$root.key[0].key` in `scope`; `$now` is the current UTC time."""
    match = _EXPRESSION.match(expression)
    if not match:
        raise InvalidParameters(f"template {{{{{expression}}}}} is not of the form $name.key[0]")
    root = match.group("root")
    if root == "now":
        value: Any = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    elif root in scope:
        value = scope[root]
    else:
        known = ", ".join(f"${name}" for name in ["now", *sorted(scope)])
        raise InvalidParameters(f"template {{{{{expression}}}}}: unknown ${root}; use {known}")
    for key, index in _STEP.findall(match.group("rest")):
        value = _step(value, key, index)
    return value


def _step(value: Any, key: str, index: str) -> Any:
    if index and isinstance(value, list):
        position = int(index)
        return value[position] if position < len(value) else None
    if key and isinstance(value, list) and key.isdigit():
        position = int(key)
        return value[position] if position < len(value) else None
    if key and isinstance(value, dict):
        return value.get(key)
    return None


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, BlobText):  # a large string inside other text: read in
        return value.text()
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def has_template(value: Any) -> bool:
    """Whether a parameter value holds a template anywhere inside it."""
    if isinstance(value, str):
        return "{{" in value
    if isinstance(value, dict):
        return any(has_template(item) for item in value.values())
    if isinstance(value, list):
        return any(has_template(item) for item in value)
    return False
