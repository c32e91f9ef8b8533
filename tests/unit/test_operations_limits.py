"""nodes/operations.py: a bodyless parallel's operations share one JavaScript memory budget,
and operations that arrive as data never run code."""

from __future__ import annotations

import threading
import time
from typing import Any

from nodes.operations import OperationLimits, run_operations

# A 40 MiB JavaScript string: fits the 128 MiB budget alone, not when it is shared.
BIG = {"expression": "'x'.repeat(40 * 1024 * 1024).length"}


def limits(**overrides: Any) -> OperationLimits:
    fields: dict[str, Any] = {
        "strategy": "allSettled",
        "concurrency": 1,
        "operation_timeout_s": 20.0,
        "global_timeout_s": 60.0,
        "fail_fast": False,
        "maintain_order": True,
        "node_deadline": time.monotonic() + 60,
    }
    return OperationLimits(**{**fields, **overrides})


def test_one_operation_has_the_whole_budget() -> None:
    out = run_operations([BIG], limits(), threading.Event())
    assert out["completed"] == 1, out


def test_concurrent_operations_share_the_budget() -> None:
    out = run_operations([BIG, BIG, BIG, BIG], limits(concurrency=4), threading.Event())
    assert out["failed"] == 4, out
    assert all("memory" in r["error"].lower() for r in out["results"]), out["results"]


def test_operations_from_data_are_values_not_code() -> None:
    given = [{"expression": "1 + 1"}, {"delay": 0, "expression": "2", "value": 3}]
    out = run_operations(given, limits(run_code=False), threading.Event())
    assert [r["result"] for r in out["results"]] == given
    ran = run_operations(given, limits(), threading.Event())
    assert [r["result"] for r in ran["results"]] == [2, 2]
