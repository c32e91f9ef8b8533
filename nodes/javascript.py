"""A sandboxed JavaScript engine (QuickJS): no I/O, a time limit and a memory limit."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import quickjs

from nodes.errors import NodeError, ScriptError

DEFAULT_MEMORY_LIMIT_BYTES = 128 * 1024 * 1024


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
        """Compile `functions`, run `program` with the JSON-decoded `data` global, return JSON."""
        context = quickjs.Context()
        context.set_memory_limit(self.memory_limit_bytes)
        context.set_time_limit(max(self.time_limit_s, 0.001))
        for name, source in functions.items():
            self.compile_function(context, name, source)
        context.set("__input", json.dumps(data))
        try:
            text = context.eval(
                f"JSON.stringify((function(data){{\n{program}\n}})(JSON.parse(__input)))"
            )
        except quickjs.JSException as exc:
            raise self._translate(exc) from None
        return None if text is None else json.loads(text)

    def _translate(self, exc: quickjs.JSException) -> NodeError:
        message = _first_line(exc)
        if "interrupted" in message:
            return NodeError(
                f"JavaScript ran past its time limit of {self.time_limit_s:.3g} s",
                code="TIMEOUT",
                retryable=False,
            )
        if "out of memory" in message:
            limit_mib = self.memory_limit_bytes // (1024 * 1024)
            return NodeError(
                f"JavaScript used more than its memory limit of {limit_mib} MiB",
                code="MEMORY_LIMIT_EXCEEDED",
                retryable=False,
            )
        return ScriptError(f"JavaScript threw {message}")


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
