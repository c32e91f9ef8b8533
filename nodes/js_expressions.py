"""Conditions as JavaScript expressions over `$input`, `$inputs` and `$vars`, in the same
sandbox as `transform`: several evaluated in one sandbox call (a node's `runIf`, an `if`'s
condition, a `switch`'s cases), and the parse check validation runs before anything is queued."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import quickjs

from nodes.errors import ScriptError
from nodes.javascript import STACK_LIMIT_BYTES, JavaScriptSandbox

MAX_EXPRESSION_CHARS = 10_000
PARSE_TIME_LIMIT_S = 2.0
PARSE_MEMORY_LIMIT_BYTES = 32 * 1024 * 1024

# Each expression runs in its own try, so an error names the one that threw.
_PROGRAM = """
const scope = Object.assign(Object.create(null), data);
const why = e => (e && e.message !== undefined) ? String(e.name || 'Error') + ': ' +
  String(e.message) : String(e);
const values = [];
with (scope) {{
{steps}
}}
return {{values}};
"""
_STEP = (
    "try {{ values.push([(\n{expression}\n)]); }}\n"
    "catch (e) {{ return {{failed: {index}, error: why(e)}}; }}"
)


def condition_scope(
    data: Any, ports: Mapping[str, Any], variables: Mapping[str, Any]
) -> dict[str, Any]:
    """The names a condition sees: `$input` (the node's main input), `$inputs` (its input
    ports), `$vars` (the execution's variables)."""
    return {"$input": data, "$inputs": dict(ports), "$vars": dict(variables)}


def evaluate_all(
    expressions: Sequence[tuple[str, str]], scope: Mapping[str, Any], time_limit_s: float
) -> list[Any]:
    """The JSON value of each `(label, expression)`, in one sandbox call; an expression that
    throws raises a ScriptError starting with its label."""
    if not expressions:
        return []
    steps = "\n".join(
        _STEP.format(expression=source, index=index)
        for index, (_, source) in enumerate(expressions)
    )
    sandbox = JavaScriptSandbox(max(time_limit_s, 0.001))
    try:
        outcome = sandbox.run({}, _PROGRAM.format(steps=steps), dict(scope))
    except ScriptError as exc:  # it does not compile (validation parses each one first)
        raise ScriptError(f"{', '.join(label for label, _ in expressions)}: {exc}") from None
    if "failed" in outcome:
        label = expressions[outcome["failed"]][0]
        raise ScriptError(f"{label}: JavaScript threw {outcome['error']}")
    return [entry[0] if entry else None for entry in outcome["values"]]


def as_condition(expression: str) -> str:
    """The expression as a JavaScript boolean (its truthiness, as `if` would see it)."""
    return f"Boolean(\n{expression}\n)"


def same_value(left: Any, right: Any) -> bool:
    """Whether two JSON values are equal (`1` equals `1.0`; `true` does not equal `1`)."""
    return _canonical(left) == _canonical(right)


def _canonical(value: Any) -> str:
    def normal(item: Any) -> Any:
        if isinstance(item, float) and item.is_integer():
            return int(item)
        if isinstance(item, Mapping):
            return {str(key): normal(inner) for key, inner in item.items()}
        if isinstance(item, list | tuple):
            return [normal(inner) for inner in item]
        return item

    return json.dumps(normal(value), sort_keys=True)


def parse_problem(expression: Any) -> str | None:
    """Why `expression` is not a JavaScript expression, or None when it parses. It is only
    compiled, into a function that is never called, so nothing in it runs; in this process
    (no helper: the API validates in its own threads), under the sandbox's stack and memory
    limits (QuickJS's parser checks its stack: deep nesting is a SyntaxError, not a crash)."""
    if not isinstance(expression, str) or not expression.strip():
        return "must be a JavaScript expression (a non-empty string)"
    if len(expression) > MAX_EXPRESSION_CHARS:
        return f"must be at most {MAX_EXPRESSION_CHARS} characters"
    context = quickjs.Context()
    context.set_memory_limit(PARSE_MEMORY_LIMIT_BYTES)
    context.set_max_stack_size(STACK_LIMIT_BYTES)
    context.set_time_limit(PARSE_TIME_LIMIT_S)
    try:
        context.eval(f"(function () {{ with ({{}}) {{ return (\n{expression}\n); }} }})")
    except quickjs.JSException as exc:
        lines = str(exc).strip().splitlines()
        return lines[0] if lines else "SyntaxError"
    return None
