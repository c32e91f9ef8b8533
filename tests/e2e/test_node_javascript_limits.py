"""User JavaScript on a real worker: nothing it does crashes the worker's process, runs past
its node's timeout, or is retried (issue 15, items 3 and 7)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conductor.model.settings import Settings
from storage.events import EventType
from tests.e2e.conftest import RunBlueprint
from workers.tasks import make_stores

DEEP_STRINGIFY = (
    "let o = {}; const root = o; for (let i = 0; i < 1000000; i++) { o.a = {}; o = o.a; }"
    " return JSON.stringify(root).length;"
)
DEEP_ARRAY_STRINGIFY = (
    "let o = []; const root = o; for (let i = 0; i < 100000; i++) { const n = []; o.push(n);"
    " o = n; } return JSON.stringify(root).length;"
)
DEEP_RESULT = (
    "let o = []; const root = o; for (let i = 0; i < 900; i++) { const n = []; o.push(n);"
    " o = n; } return root;"
)


def _transform(code: str, timeout_ms: int = 20000) -> str:
    return f"""
id: js-limits
name: JavaScript limits
nodes:
  - id: js
    type: transform
    parameters: {{code: {json.dumps(code)}, timeout: {timeout_ms}, retries: 3}}
"""


def _node_events(settings: Settings, execution_id: str) -> list[str]:
    events = make_stores(settings).state.events(execution_id) or []
    return [event.type.value for event in events if event.node_id == "js"]


def _failed_once(result: dict[str, Any], settings: Settings) -> dict[str, Any]:
    assert result["status"] == "failed", result
    types = _node_events(settings, result["id"])
    assert EventType.NODE_RETRYING.value not in types, types
    assert types.count(EventType.NODE_STARTED.value) == 1, types
    error: dict[str, Any] = result["error"]
    assert error["nodeId"] == "js"
    return error


@pytest.mark.parametrize("code", [DEEP_STRINGIFY, DEEP_ARRAY_STRINGIFY], ids=["object", "array"])
def test_stringify_of_deep_data_fails_the_node_cleanly(
    run_blueprint: RunBlueprint, settings: Settings, code: str
) -> None:
    error = _failed_once(run_blueprint(_transform(code), timeout_s=90), settings)
    assert "crashed its engine" in error["message"], error
    # The worker's process pool is whole: the next node runs.
    assert run_blueprint(_transform("return 1 + 1;"))["status"] == "succeeded"


def test_a_result_nested_past_the_limit_is_refused(
    run_blueprint: RunBlueprint, settings: Settings
) -> None:
    error = _failed_once(run_blueprint(_transform(DEEP_RESULT)), settings)
    assert "nested deeper than 100 levels" in error["message"], error


@pytest.mark.parametrize(
    "code",
    ["while (true) {}", "return /(a+)+$/.test('a'.repeat(40) + '!');"],
    ids=["busy-loop", "redos"],
)
def test_javascript_stops_at_its_timeout_and_is_not_retried(
    run_blueprint: RunBlueprint, settings: Settings, code: str
) -> None:
    error = _failed_once(run_blueprint(_transform(code, timeout_ms=2000), timeout_s=60), settings)
    assert error["code"] == "TIMEOUT", error
    assert "time limit of 2 s" in error["message"], error
