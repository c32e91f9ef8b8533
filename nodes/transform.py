"""`transform`: map, filter, reduce, sort... over a list with a JavaScript arrow function."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import AliasChoices, Field, field_validator, model_validator

from nodes.base import Node, NodeContext, NodeParameters
from nodes.errors import NodeError
from nodes.javascript import JavaScriptSandbox
from nodes.json_text import parse_json

Operation = Literal[
    "map", "filter", "reduce", "sort", "group", "flatten", "unique", "reverse", "limit", "skip",
    "slice",
]  # fmt: skip

IDENTITY = "item => item"

# Each operation as JavaScript over `items` with the compiled user function `fn`.
_PROGRAMS: dict[str, str] = {
    "map": "return items.map((item, index) => fn(item, index));",
    "filter": "return items.filter((item, index) => fn(item, index));",
    "reduce": (
        "return items.reduce((acc, item, index) => fn.length >= 2 ? fn(acc, item, index)"
        " : fn({acc, item, index}), opts.initial);"
    ),
    # Atomiton's order: both values numbers under Number() compare as numbers, anything else
    # by String() in UTF-16 code units; Array.prototype.sort is stable, so ties keep order.
    "sort": (
        "const key = item => opts.sortKey === null ? fn(item)"
        " : (item !== null && typeof item === 'object' && opts.sortKey in item"
        " ? item[opts.sortKey] : undefined);"
        "const sign = opts.sortDirection === 'desc' ? -1 : 1;"
        "const order = (x, y) => { const nx = Number(x), ny = Number(y);"
        " if (!Number.isNaN(nx) && !Number.isNaN(ny)) return nx < ny ? -1 : nx > ny ? 1 : 0;"
        " const sx = String(x), sy = String(y); return sx < sy ? -1 : sx > sy ? 1 : 0; };"
        "return items.slice().sort((a, b) => sign * order(key(a), key(b)));"
    ),
    "group": (
        "const out = {}; for (const item of items) {"
        " const k = String(opts.groupKey === null ? fn(item)"
        " : (item !== null && typeof item === 'object' ? item[opts.groupKey] : undefined));"
        " (out[k] = out[k] || []).push(item); } return out;"
    ),
    "flatten": "return items.flat(opts.flattenDepth);",
    "unique": (
        "const seen = new Set(); return items.filter(item => {"
        " const k = JSON.stringify(fn(item)); if (seen.has(k)) return false;"
        " seen.add(k); return true; });"
    ),
    "reverse": "return items.slice().reverse();",
    "limit": "return items.slice(0, opts.limitCount);",
    "skip": "return items.slice(opts.skipCount);",
    "slice": (
        "return items.slice(opts.sliceStart, opts.sliceEnd === null ? undefined : opts.sliceEnd);"
    ),
}
# Atomiton also takes a bare property path as a function: `item.price` reads it from the item;
# any other name resolves to undefined (its scope holds only `item`).
_PROPERTY_PATH = re.compile(r"\s*([A-Za-z_$][\w$]*)((?:\.[A-Za-z_$][\w$]*)*)\s*")


DataType = Literal["array", "object", "string", "number", "boolean", "any"]
_JS_TYPES: dict[str, type | tuple[type, ...]] = {
    "array": list,
    "object": dict,
    "string": str,
    "number": (int, float),
    "boolean": bool,
}


class TransformParameters(NodeParameters):
    """Parameters of `transform`, under Atomiton's names (Conductor's earlier names, `groupBy`,
    `limit`, `skip`, `start` and `end`, are aliases).

    Atomiton's flows also write a function *body* as `expression` or `code` (for example
    `return data.filter(row => row.active === 'true');`): it runs with the whole input bound to
    `data` (or the name in `inputParams`) and replaces `operation`. `inputType`, `outputType`
    and `returnType` are checked, not ignored.
    """

    operation: Operation = "map"
    transformFunction: str = Field(
        default=IDENTITY,
        min_length=1,
        validation_alias=AliasChoices("transformFunction", "function"),
        description="Arrow function or property path (an input port `function` replaces it)",
    )
    reduceFunction: str | None = None
    reduceInitial: Any = Field(
        default=0, description="reduce: start value; a string is read as JSON, else a number"
    )
    sortKey: str | None = Field(default=None, description="sort: the key; group: fallback key")
    sortDirection: Literal["asc", "desc"] = "asc"
    groupKey: str | None = Field(
        default=None, validation_alias=AliasChoices("groupKey", "groupBy"), description="group"
    )
    flattenDepth: int = Field(default=1, ge=1, le=10)
    limitCount: int = Field(
        default=10, ge=1, validation_alias=AliasChoices("limitCount", "limit"), description="limit"
    )
    skipCount: int = Field(
        default=0, ge=0, validation_alias=AliasChoices("skipCount", "skip"), description="skip"
    )
    sliceStart: int = Field(
        default=0,
        validation_alias=AliasChoices("sliceStart", "start"),
        description="slice: first index (negative counts from the end)",
    )
    sliceEnd: int | None = Field(
        default=None,
        validation_alias=AliasChoices("sliceEnd", "end"),
        description="slice: end index, excluded (negative counts from the end)",
    )
    data: list[Any] | None = Field(
        default=None, description="The list to transform when no input port `data` gives one"
    )
    expression: str | None = Field(default=None, min_length=1)
    code: str | None = Field(default=None, min_length=1)
    inputParams: str = Field(default="data", pattern=r"^[A-Za-z_$][\w$]*$")
    inputType: DataType = "any"
    outputType: DataType = "any"
    returnType: DataType = "any"
    async_: bool = Field(default=False, alias="async")

    @field_validator(
        "flattenDepth", "limitCount", "skipCount", "sliceStart", "sliceEnd", mode="before"
    )
    @classmethod
    def _truncate(cls, value: Any) -> Any:
        """Atomiton's counts are JavaScript numbers: a fraction is truncated, as slice does."""
        if isinstance(value, float) and math.isfinite(value):
            return math.trunc(value)
        return value

    @field_validator("data", mode="before")
    @classmethod
    def _node_output_stands_for_its_result(cls, value: Any) -> Any:
        """A port `data` fed a whole node output: its `result`, as everywhere in Conductor."""
        if isinstance(value, dict) and isinstance(value.get("result"), list):
            return value["result"]
        return value

    @model_validator(mode="after")
    def _one_body(self) -> TransformParameters:
        if self.expression and self.code:
            raise ValueError("give either expression or code, not both")
        if self.async_:
            raise ValueError("async functions are not supported: return the value directly")
        return self


class TransformNode(Node[TransformParameters]):
    """Transform a list with a JavaScript arrow function, in a sandbox with time and memory
    limits. A single value that is not a list is transformed as a one-item list and comes
    back as a single value (for `map`)."""

    type_name = "transform"
    description = "Transform a list with a sandboxed JavaScript arrow function"
    parameters_model = TransformParameters

    def run(self, params: TransformParameters, context: NodeContext) -> Mapping[str, Any]:
        # Atomiton reads `data` from the input, then the parameter; here a port named `data`
        # has already replaced the parameter, and the main input comes last.
        data = params.data if params.data is not None else context.data
        _check_type("input", data, params.inputType)
        body = params.expression or params.code
        if body is not None:
            return self._run_body(params, context, body, data)
        return self._run_operation(params, context, data)

    def _run_body(
        self, params: TransformParameters, context: NodeContext, body: str, data: Any
    ) -> Mapping[str, Any]:
        program = f"return (function({params.inputParams}) {{\n{body}\n}})(data);"
        out = JavaScriptSandbox(time_limit_s=context.remaining_s()).run({}, program, data)
        for role in ("outputType", "returnType"):
            _check_type(role, out, getattr(params, role))
        return _output(out, data, "code")

    def _run_operation(
        self, params: TransformParameters, context: NodeContext, data: Any
    ) -> Mapping[str, Any]:
        single = not isinstance(data, list) and data is not None
        items = [] if data is None else [data] if single else data
        group_key = params.groupKey or params.sortKey
        if params.operation == "group" and group_key is None and not _custom(params):
            raise NodeError("groupKey or sortKey is required for group operation", retryable=False)
        options = {
            "initial": reduce_initial(params.reduceInitial),
            "sortKey": params.sortKey,
            "sortDirection": params.sortDirection,
            "groupKey": group_key,
            "flattenDepth": params.flattenDepth,
            "limitCount": params.limitCount,
            "skipCount": params.skipCount,
            "sliceStart": params.sliceStart,
            "sliceEnd": params.sliceEnd,
        }
        program = "const items = data.items, opts = data.opts;\n" + _PROGRAMS[params.operation]
        sandbox = JavaScriptSandbox(time_limit_s=context.remaining_s())
        source = function_source(_function(params))
        out = sandbox.run({"fn": source}, program, {"items": items, "opts": options})
        if single and params.operation == "map" and isinstance(out, list) and len(out) == 1:
            out = out[0]
        _check_type("outputType", out, params.outputType)
        return _output(out, items, params.operation)


def _function(params: TransformParameters) -> str:
    """The user function for this operation: `reduceFunction` for reduce when set."""
    if params.operation == "reduce" and params.reduceFunction:
        return params.reduceFunction
    return params.transformFunction


def _custom(params: TransformParameters) -> bool:
    """Whether a function other than the identity was given."""
    return params.transformFunction.strip() != IDENTITY


def function_source(text: str) -> str:
    """A function expression for `text`: Atomiton's bare property path (`item.price`) becomes
    an arrow function reading it from the item (another root name reads nothing)."""
    match = _PROPERTY_PATH.fullmatch(text)
    if match is None or "=>" in text or match.group(1) in ("function", "async", "class"):
        return text
    if match.group(1) != "item":
        return "item => undefined"
    return f"item => item{match.group(2)}"


def reduce_initial(value: Any) -> Any:
    """Atomiton's `reduceInitial`: a string is JSON, else a number JavaScript's Number()
    accepts, else the text itself; any other value is used as it is."""
    if not isinstance(value, str):
        return value
    try:
        return parse_json(value)
    except ValueError:
        pass
    if not value.strip():
        return value
    number = _js_number(value.strip())
    return value if number is None else number


def _js_number(text: str) -> int | float | None:
    """What Number() gives for `text` (hex, octal, binary, decimals, Infinity), or None."""
    lowered = text.lower()
    for prefix, base in (("0x", 16), ("0o", 8), ("0b", 2)):
        if lowered.startswith(prefix):
            try:
                return int(lowered[2:], base)
            except ValueError:
                return None
    if re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?", lowered):
        number = float(lowered)
        return int(number) if number.is_integer() and abs(number) < 2**53 else number
    return None


def _output(out: Any, given: Any, operation: str) -> dict[str, Any]:
    return {
        "result": out,
        "data": out,
        "inputCount": len(given) if isinstance(given, list | dict) else 1,
        "outputCount": len(out) if isinstance(out, list | dict) else 1,
        "operation": operation,
        "success": True,
    }


def _check_type(role: str, value: Any, expected: str) -> None:
    wanted = _JS_TYPES.get(expected)
    if wanted is None or (
        isinstance(value, wanted) and not (expected == "number" and isinstance(value, bool))
    ):
        return
    raise NodeError(
        f"{role} is {type(value).__name__}, but the transform declares {expected}",
        retryable=False,
    )
