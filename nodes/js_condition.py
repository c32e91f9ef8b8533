"""JavaScript expressions with variables, in the same QuickJS sandbox as `transform`: a
`loop`'s while condition and a `parallel` operation's expression."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nodes.errors import ScriptError
from nodes.javascript import JavaScriptSandbox

# The whole while loop runs in one sandbox call: each record is built in JavaScript, so the
# condition sees `lastResult` exactly as Atomiton gives it (the previous record).
_WHILE_PROGRAM = """
const records = [], errors = [];
const why = e => (e && e.message !== undefined) ? String(e.message) : String(e);
let go;
try { go = __condition(0, null); } catch (e) { return {invalid: why(e)}; }
let k = 0;
while (go && records.length < data.cap) {
  const record = {iteration: k, timestamp: new Date().toISOString(), condition: true};
  records.push(record);
  try { go = __condition(k, record); }
  catch (e) { errors.push({iteration: k, error: 'Invalid condition: ' + why(e)}); break; }
  k += 1;
}
return {records, errors, capped: Boolean(go) && errors.length === 0};
"""


@dataclass(frozen=True)
class WhileRun:
    """A loop's records, the condition's errors, and whether the cap stopped it."""

    records: list[dict[str, Any]]
    errors: list[dict[str, Any]] = field(default_factory=list)
    capped: bool = False


def run_while(condition: str | None, cap: int, time_limit_s: float) -> WhileRun:
    """Atomiton's while loop: `condition` (absent or empty: `false`) is evaluated with
    `iteration` and `lastResult` before the first record and after each one, at most `cap`
    records. A condition that fails the first time raises; later, it ends the loop in `errors`."""
    source = f"(iteration, lastResult) => (\n{condition or 'false'}\n)"
    sandbox = JavaScriptSandbox(time_limit_s)
    try:
        outcome = sandbox.run({"__condition": source}, _WHILE_PROGRAM, {"cap": cap})
    except ScriptError as exc:  # it does not compile
        raise ScriptError(f"Invalid condition: {_reason(str(exc))}") from None
    if "invalid" in outcome:
        raise ScriptError(f"Invalid condition: {outcome['invalid']}")
    return WhileRun(outcome["records"], outcome["errors"], outcome["capped"])


def _reason(message: str) -> str:
    """`__condition does not compile: SyntaxError: ...` -> `SyntaxError: ...`."""
    return message.split(": ", 1)[1] if message.startswith("__condition") else message
