"""`edit-fields`: set or create fields on the input object, rendering Atomiton's templates."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import Field, field_validator

from nodes.base import Node, NodeContext, NodeParameters
from nodes.errors import NodeError, ScriptError
from nodes.javascript import evaluate_expression
from nodes.json_text import parse_json
from nodes.output_budget import OutputBudget
from nodes.templates import evaluate, render_string

# Atomiton's tags; one newline right after a tag is swallowed, as Squirrelly does.
_TAG = re.compile(r"\{\{(.*?)\}\}\n?", re.DOTALL)
# Conductor's own templates ($input, $vars...) keep Conductor's meaning inside `values`.
_CONDUCTOR = re.compile(r"\s*\$(now|input|inputs|vars|execution)(?:\.[\w-]+|\[\d+\])*\s*")


class EditFieldsParameters(NodeParameters):
    """Parameters of `edit-fields`."""

    values: dict[str, Any] = Field(default_factory=dict, description="Fields to set")
    keepOnlySet: bool = Field(default=False, description="Drop the input's other fields")

    @field_validator("values", mode="before")
    @classmethod
    def _values_from_json(cls, value: Any) -> Any:
        """Atomiton also accepts `values` as a JSON object in a string."""
        if isinstance(value, str):
            try:
                return parse_json(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"values is a string but not a JSON object: {exc}") from None
        return value


class EditFieldsNode(Node[EditFieldsParameters]):
    """Set fields from `values` over the input object. A string value is an Atomiton
    template: `{{ expression }}` is JavaScript over the input's fields and `$now`, its value
    inserted as text, HTML-escaped; `{{$input.x}}` and the other `$` names are Conductor's."""

    type_name = "edit-fields"
    description = "Edit existing fields or create new data fields"
    parameters_model = EditFieldsParameters
    self_rendered_parameters = frozenset({"values"})

    def run(self, params: EditFieldsParameters, context: NodeContext) -> Mapping[str, Any]:
        data = context.data
        base = dict(data) if isinstance(data, dict) else {}
        edited = {} if params.keepOnlySet else dict(base)
        # Rendering stops once the fields are past the output limit (CONDUCTOR_MAX_OUTPUT_MB).
        budget = OutputBudget(context.environment.max_output_bytes, what="edit-fields' output")
        if not params.keepOnlySet:
            budget.charge(base, depth=2)
        for name, value in params.values.items():
            edited[name] = _render(name, value, base, context, budget)
        return {"result": edited, "data": edited}


def _render(
    name: str, value: Any, fields: dict[str, Any], context: NodeContext, budget: OutputBudget
) -> Any:
    """One field's value: strings as templates, anything else with Conductor's templates;
    each counted against `budget`."""
    scope = {
        "input": context.data,
        "inputs": dict(context.inputs),
        "vars": dict(context.variables),
        "execution": {"id": context.execution_id},
    }
    if not isinstance(value, str):
        nested = _render_nested(value, scope, budget)
        budget.charge(nested, depth=2)
        return nested
    tags = list(_TAG.finditer(value))
    whole = len(tags) == 1 and tags[0].span() == (0, len(value))
    if whole and _CONDUCTOR.fullmatch(tags[0].group(1)):
        found = evaluate(tags[0].group(1).strip(), scope)  # keeps the value's type
        budget.charge(found, depth=2)
        return found

    def text(tag: re.Match[str]) -> str:
        rendered = _tag_text(name, tag.group(1), fields, scope, context)
        budget.charge_text(len(rendered))
        return rendered

    return _TAG.sub(text, value)


def _render_nested(value: Any, scope: dict[str, Any], budget: OutputBudget) -> Any:
    """Inside lists and mappings only Conductor's `$` templates are rendered; Atomiton
    stores nested values unchanged, so its own `{{name}}` stays text there."""
    if isinstance(value, dict):
        return {key: _render_nested(item, scope, budget) for key, item in value.items()}
    if isinstance(value, list):
        return [_render_nested(item, scope, budget) for item in value]
    if isinstance(value, str) and all(_CONDUCTOR.fullmatch(t) for t in _TAG.findall(value)):
        return render_string(value, scope, budget)
    return value


# JavaScript's standard globals (QuickJS's), which a template may call.
JS_GLOBALS = frozenset((
    "Array", "ArrayBuffer", "BigInt", "Boolean", "DataView", "Date", "Error", "EvalError",
    "Float32Array", "Float64Array", "Infinity", "Int16Array", "Int32Array", "Int8Array", "Intl",
    "JSON", "Map", "Math", "NaN", "Number", "Object", "Promise", "Proxy", "RangeError",
    "ReferenceError", "Reflect", "RegExp", "Set", "String", "Symbol", "SyntaxError", "TypeError",
    "URIError", "Uint16Array", "Uint32Array", "Uint8Array", "Uint8ClampedArray", "WeakMap",
    "WeakSet", "decodeURI", "decodeURIComponent", "encodeURI", "encodeURIComponent", "escape",
    "globalThis", "isFinite", "isNaN", "parseFloat", "parseInt", "undefined", "unescape",
))  # fmt: skip


def _tag_text(
    name: str, expression: str, fields: dict[str, Any], scope: dict[str, Any], context: NodeContext
) -> str:
    """A tag's text: Conductor's `$` names as text, anything else as Atomiton renders it."""
    if _CONDUCTOR.fullmatch(expression):
        found = evaluate(expression.strip(), scope)
        if found is None or isinstance(found, str):
            return found or ""
        return json.dumps(found, ensure_ascii=False, separators=(",", ":"))
    # Atomiton's scope (the input's fields and $now); Conductor's `$` names are there too.
    variables = {**{f"${key}": item for key, item in scope.items()}, **fields, "$now": _now()}
    # Atomiton pre-seeds the first name of the tag: an unknown field renders as "". Unlike
    # Atomiton, a JavaScript global (`Math.round(n)`) is not hidden by that "".
    first = re.split(r"[. ]", expression.strip(), maxsplit=1)[0]
    if first not in JS_GLOBALS:
        variables.setdefault(first, "")
    try:
        text = evaluate_expression(f"String({expression})", variables, context.remaining_s())
    except ScriptError as exc:
        raise ScriptError(f"values.{name}: template {{{{{expression}}}}}: {exc}") from None
    except NodeError:
        raise
    return html.escape(str(text), quote=True).replace("&#x27;", "&#39;")


def _now() -> str:
    """The current UTC time as Atomiton writes it: milliseconds and a Z."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
