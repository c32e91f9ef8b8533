"""`transform`: map, filter, reduce, sort... over a list with a JavaScript arrow function."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, model_validator

from nodes.base import Node, NodeContext, NodeParameters
from nodes.errors import NodeError
from nodes.javascript import JavaScriptSandbox

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
    "sort": (
        "const key = item => opts.sortKey ? (item == null ? item : item[opts.sortKey]) : fn(item);"
        "const sign = opts.sortDirection === 'desc' ? -1 : 1;"
        "return items.slice().sort((a, b) => { const x = key(a), y = key(b);"
        " if (typeof x === 'number' && typeof y === 'number') return sign * (x - y);"
        " return sign * String(x).localeCompare(String(y)); });"
    ),
    "group": (
        "const out = {}; for (const item of items) {"
        " const k = String(opts.groupBy ? (item == null ? item : item[opts.groupBy]) : fn(item));"
        " (out[k] = out[k] || []).push(item); } return out;"
    ),
    "flatten": "return items.flat(opts.flattenDepth);",
    "unique": (
        "const seen = new Set(); return items.filter(item => {"
        " const k = JSON.stringify(fn(item)); if (seen.has(k)) return false;"
        " seen.add(k); return true; });"
    ),
    "reverse": "return items.slice().reverse();",
    "limit": "return items.slice(0, opts.limit);",
    "skip": "return items.slice(opts.skip);",
    "slice": "return items.slice(opts.start, opts.end === null ? undefined : opts.end);",
}


DataType = Literal["array", "object", "string", "number", "boolean", "any"]
_JS_TYPES: dict[str, type | tuple[type, ...]] = {
    "array": list,
    "object": dict,
    "string": str,
    "number": (int, float),
    "boolean": bool,
}


class TransformParameters(NodeParameters):
    """Parameters of `transform`.

    Atomiton's flows also write a function *body* as `expression` or `code` (for example
    `return data.filter(row => row.active === 'true');`): it runs with the whole input bound to
    `data` (or the name in `inputParams`) and replaces `operation`. `inputType`, `outputType`
    and `returnType` are checked, not ignored.
    """

    operation: Operation = "map"
    transformFunction: str = Field(default=IDENTITY, min_length=1)
    reduceFunction: str | None = None
    reduceInitial: Any = 0
    sortKey: str | None = None
    sortDirection: Literal["asc", "desc"] = "asc"
    groupBy: str | None = None
    flattenDepth: int = Field(default=1, ge=1, le=10)
    limit: int = Field(default=10, ge=0)
    skip: int = Field(default=0, ge=0)
    start: int = 0
    end: int | None = None
    expression: str | None = Field(default=None, min_length=1)
    code: str | None = Field(default=None, min_length=1)
    inputParams: str = Field(default="data", pattern=r"^[A-Za-z_$][\w$]*$")
    inputType: DataType = "any"
    outputType: DataType = "any"
    returnType: DataType = "any"
    async_: bool = Field(default=False, alias="async")

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
        _check_type("input", context.data, params.inputType)
        body = params.expression or params.code
        if body is not None:
            return self._run_body(params, context, body)
        return self._run_operation(params, context)

    def _run_body(
        self, params: TransformParameters, context: NodeContext, body: str
    ) -> Mapping[str, Any]:
        program = f"return (function({params.inputParams}) {{\n{body}\n}})(data);"
        out = JavaScriptSandbox(time_limit_s=context.remaining_s()).run({}, program, context.data)
        for role in ("outputType", "returnType"):
            _check_type(role, out, getattr(params, role))
        return _output(out, context.data, "code")

    def _run_operation(
        self, params: TransformParameters, context: NodeContext
    ) -> Mapping[str, Any]:
        data = context.data
        single = not isinstance(data, list)
        items = [data] if single else data
        source = (
            params.reduceFunction
            if params.operation == "reduce" and params.reduceFunction
            else params.transformFunction
        )
        options = {
            "initial": params.reduceInitial,
            "sortKey": params.sortKey,
            "sortDirection": params.sortDirection,
            "groupBy": params.groupBy,
            "flattenDepth": params.flattenDepth,
            "limit": params.limit,
            "skip": params.skip,
            "start": params.start,
            "end": params.end,
        }
        program = "const items = data.items, opts = data.opts;\n" + _PROGRAMS[params.operation]
        sandbox = JavaScriptSandbox(time_limit_s=context.remaining_s())
        out = sandbox.run({"fn": source}, program, {"items": items, "opts": options})
        if single and params.operation == "map" and isinstance(out, list) and len(out) == 1:
            out = out[0]
        _check_type("outputType", out, params.outputType)
        return _output(out, items, params.operation)


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
