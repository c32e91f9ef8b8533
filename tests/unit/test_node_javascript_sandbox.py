"""The JavaScript sandbox's helper processes (issue 15, items 3 and 7): a crash or a timeout
costs only its helper; the next evaluation gets a new one."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from nodes.errors import NodeError, ScriptError
from nodes.javascript import JavaScriptSandbox, evaluate_expression

DEEP_STRINGIFY = (
    "let o = []; const root = o; for (let i = 0; i < 100000; i++) { const n = []; o.push(n);"
    " o = n; } return JSON.stringify(root).length;"
)


def test_a_crash_of_the_engine_is_a_clean_error_and_the_next_evaluation_runs() -> None:
    with pytest.raises(ScriptError, match=r"crashed its engine \(killed by SIGSEGV\)") as caught:
        JavaScriptSandbox(30).run({}, DEEP_STRINGIFY, None)
    assert caught.value.retryable is False
    assert JavaScriptSandbox(5).run({}, "return data + 1;", 41) == 42


@pytest.mark.parametrize(
    "program", ["while (true) {}", "return /(a+)+$/.test('a'.repeat(40) + '!');"]
)
def test_wall_time_ends_loops_and_regular_expressions(program: str) -> None:
    with pytest.raises(NodeError, match=r"time limit of 0\.5 s") as caught:
        JavaScriptSandbox(0.5).run({}, program, None)
    assert caught.value.code == "TIMEOUT" and caught.value.retryable is False
    assert evaluate_expression("a * 2", {"a": 21}, 5) == 42


def test_a_result_deeper_than_the_limit_is_refused() -> None:
    program = "let o = []; const r = o; for (let i = 0; i < 150; i++) { o.push([]); o = o[0]; }"
    with pytest.raises(ScriptError, match="nested deeper than 100 levels"):
        JavaScriptSandbox(5).run({}, program + " return r;", None)


def test_threads_evaluate_at_once() -> None:
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda n: evaluate_expression("n * n", {"n": n}, 10), range(40)))
    assert results == [n * n for n in range(40)]


def test_null_thrown_says_what_it_may_mean() -> None:
    with pytest.raises(ScriptError, match="threw null: the program threw null, or ran out"):
        JavaScriptSandbox(5).run({}, "throw null;", None)
