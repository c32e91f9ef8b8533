"""A sandboxed JavaScript engine (QuickJS): no I/O, a wall-clock time limit, a memory limit,
a stack limit, and results at most MAX_JS_DEPTH levels deep. Evaluations run in helper
processes (nodes.js_process), so nothing a program does can crash or outlast the worker."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import quickjs

from nodes.errors import NodeError, ScriptError
from nodes.js_process import HelperPool

DEFAULT_MEMORY_LIMIT_BYTES = 128 * 1024 * 1024
STACK_LIMIT_BYTES = 1024 * 1024  # QuickJS's own check, far below the C stack
# How deep a program's result may nest; deeper data cannot be stored (see docs/nodes.md).
MAX_JS_DEPTH = 100

# Checks the result's depth without recursion before it is turned into JSON.
_DEPTH_CHECK = """
globalThis.__checkDepth = function (value, limit) {
  const stack = [[value, 1]];
  while (stack.length) {
    const [v, depth] = stack.pop();
    if (v === null || typeof v !== 'object') continue;
    if (depth > limit) throw new RangeError(
      'the result is nested deeper than ' + limit + ' levels (arrays and objects)');
    for (const key of Object.keys(v)) stack.push([v[key], depth + 1]);
  }
  return value;
};
"""


class JavaScriptSandbox:
    """Runs one program in a fresh QuickJS context; data crosses the boundary as JSON."""

    def __init__(self, time_limit_s: float, memory_limit_bytes: int = DEFAULT_MEMORY_LIMIT_BYTES):
        self.time_limit_s = time_limit_s
        self.memory_limit_bytes = memory_limit_bytes

    def compile_function(self, context: quickjs.Context, name: str, source: str) -> None:
        """Bind `source` (a function expression such as `item => item * 2`) to global `name`."""
        try:
            context.eval(f"globalThis.{name} = (\n{source}\n);")
        except quickjs.JSException as exc:
            raise ScriptError(f"{name} does not compile: {_first_line(exc)}") from None
        if context.eval(f"typeof {name}") != "function":
            raise ScriptError(f"{name} is not a function; write it like `item => item * 2`")

    def run(self, functions: dict[str, str], program: str, data: Any) -> Any:
        """Compile `functions`, run `program` with the JSON-decoded `data` global, return JSON;
        in a helper process killed at the time limit (wall time)."""
        limit_s = max(self.time_limit_s, 0.001)
        request = {
            "functions": functions,
            "program": program,
            "input": json.dumps(data),
            "time_limit_s": limit_s,
            "memory_limit_bytes": self.memory_limit_bytes,
        }
        text = _HELPERS.run(request, limit_s)
        return None if text == "" else json.loads(text)

    def evaluate(self, functions: dict[str, str], program: str, source: str) -> str:
        """The JSON text of the program's result ("" for undefined), in this process."""
        context = quickjs.Context()
        context.set_memory_limit(self.memory_limit_bytes)
        context.set_max_stack_size(STACK_LIMIT_BYTES)
        context.set_time_limit(max(self.time_limit_s, 0.001))
        context.eval(_DEPTH_CHECK)
        for name, source_text in functions.items():
            self.compile_function(context, name, source_text)
        context.set("__input", source)
        call = f"(function(data){{\n{program}\n}})(JSON.parse(__input))"
        try:
            text = context.eval(f"JSON.stringify(__checkDepth({call}, {MAX_JS_DEPTH}))")
        except quickjs.JSException as exc:
            raise self._translate(exc) from None
        return "" if text is None else str(text)

    def _translate(self, exc: quickjs.JSException) -> NodeError:
        message = _first_line(exc)
        if "interrupted" in message:
            return NodeError(
                f"JavaScript ran past its time limit of {self.time_limit_s:.3g} s",
                code="TIMEOUT",
                retryable=False,
            )
        if "stack overflow" in message:
            return ScriptError(f"JavaScript threw {message} (recursion or nesting too deep)")
        if "out of memory" in message:
            limit_mib = self.memory_limit_bytes // (1024 * 1024)
            return NodeError(
                f"JavaScript used more than its memory limit of {limit_mib} MiB",
                code="MEMORY_LIMIT_EXCEEDED",
                retryable=False,
            )
        if message == "null":  # QuickJS throws null when it cannot even allocate the error
            limit_mib = self.memory_limit_bytes // (1024 * 1024)
            return ScriptError(
                f"JavaScript threw null: the program threw null, or ran out of its {limit_mib} "
                "MiB of memory"
            )
        return ScriptError(f"JavaScript threw {message}")


def _evaluate_request(request: dict[str, Any]) -> str:
    """One evaluation in a helper process (see `JavaScriptSandbox.run`)."""
    sandbox = JavaScriptSandbox(request["time_limit_s"], request["memory_limit_bytes"])
    return sandbox.evaluate(request["functions"], request["program"], request["input"])


_HELPERS = HelperPool(_evaluate_request)


def evaluate_expression(
    expression: str,
    variables: Mapping[str, Any],
    time_limit_s: float,
    memory_limit_bytes: int = DEFAULT_MEMORY_LIMIT_BYTES,
) -> Any:
    """The JSON value of one JavaScript expression whose free names are `variables`' keys
    (looked up `with`-style, so any key works; prototype names do not leak in)."""
    program = (
        "const scope = Object.assign(Object.create(null), data);\n"
        f"with (scope) {{ return (\n{expression}\n); }}"
    )
    return JavaScriptSandbox(time_limit_s, memory_limit_bytes).run({}, program, dict(variables))


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
