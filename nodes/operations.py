"""A bodyless `parallel`'s `operations`: each item run on a thread, with Atomiton's strategies,
concurrency and timeouts.

An operation is a mapping with `expression` (JavaScript in the `transform` sandbox, reading
`index` and `input`, the mapping's `input`), or with `delay` (ms to wait, then its `value`, or
then its `expression`); any other item is passed through as its own result. Operations that
came from data rather than from the Blueprint (the execution's inputs) never run code: their
`expression` is not evaluated. The operations of one node share one JavaScript memory budget,
and each (a race's too) is limited by `operationTimeout`: QuickJS cannot be stopped from
outside, so that bounds how long a race's loser runs on after the race is won.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Literal

from nodes.containers import iso_timestamp
from nodes.errors import NodeError, NodeStopped
from nodes.javascript import DEFAULT_MEMORY_LIMIT_BYTES, evaluate_expression

RACE_THREADS = 50  # a race starts every operation at once, on at most this many threads
MIN_MEMORY_BYTES = 4 * 1024 * 1024  # per operation, however many share the budget
POLL_S = 0.05  # how often a waiting operation looks at its stop signals


@dataclass(frozen=True)
class OperationLimits:
    """How operations run: Atomiton's parallel parameters, in seconds, and the node's end."""

    strategy: Literal["all", "allSettled", "race"]
    concurrency: int
    operation_timeout_s: float
    global_timeout_s: float
    fail_fast: bool
    maintain_order: bool
    node_deadline: float  # time.monotonic() when the node's own `timeout` ends
    run_code: bool = True  # False for operations from data: no `expression` is evaluated


@dataclass(frozen=True)
class Settled:
    """One operation's outcome: its record (`{index, input, result, timestamp}`) or error."""

    index: int
    ok: bool
    value: Any
    finished: float


class _OperationTimeout(Exception):
    """The operation ran past its `operationTimeout`."""


def run_operations(
    operations: list[Any], limits: OperationLimits, stop: threading.Event
) -> dict[str, Any]:
    """`{results, completed, failed, duration, success}` for the operations; raises on a
    global timeout, a failure under `all`, or a race that nothing won."""
    started = time.monotonic()
    if not operations:
        return {"results": [], "completed": 0, "failed": 0, "duration": 0, "success": True}
    runner = _Runner(operations, limits, stop, started)
    settled = runner.race() if limits.strategy == "race" else runner.all_settled()
    if not limits.maintain_order or limits.strategy == "race":
        settled.sort(key=lambda s: s.finished)
    else:
        settled.sort(key=lambda s: s.index)
    failed = sum(not s.ok for s in settled)
    if limits.strategy == "all" and failed:
        raise NodeError("One or more operations failed", retryable=False)
    return {
        "results": [s.value if s.ok else {"error": s.value} for s in settled],
        "completed": len(settled) - failed,
        "failed": failed,
        "duration": int((time.monotonic() - started) * 1000),
        "success": failed == 0,
    }


class _Runner:
    """Runs one node's operations; `halt` stops every waiting operation."""

    def __init__(
        self, operations: list[Any], limits: OperationLimits, stop: threading.Event, start: float
    ) -> None:
        self.operations = operations
        self.limits = limits
        self.stop = stop
        self.halt = threading.Event()
        self.failed = threading.Event()
        global_end = start + limits.global_timeout_s
        self.deadline = min(global_end, limits.node_deadline)
        self.node_bound = limits.node_deadline < global_end
        self.memory_bytes = DEFAULT_MEMORY_LIMIT_BYTES  # shared by the threads (see _each)

    def all_settled(self) -> list[Settled]:
        """Every operation, `concurrency` at a time in index order; under failFast (and `all`)
        none starts after a failure."""
        fail_fast = self.limits.fail_fast or self.limits.strategy == "all"
        return [
            s
            for s in self._each(self.limits.concurrency, lambda i: self._one(i, fail_fast))
            if s is not None
        ]

    def race(self) -> list[Settled]:
        """Every operation at once (no `operationTimeout`); the first to succeed wins."""
        errors: list[str] = []
        threads = min(len(self.operations), RACE_THREADS)
        for settled in self._each(threads, lambda i: self._one(i, False)):
            if settled is not None and settled.ok:
                self.halt.set()
                return [settled]
            if settled is not None:
                errors.append(str(settled.value))
        raise NodeError(f"every operation of the race failed: {'; '.join(errors)}", retryable=False)

    def _each(
        self, threads: int, work: Callable[[int], Settled | None]
    ) -> Iterator[Settled | None]:
        """Each operation's outcome as it ends; the global timeout ends them all."""
        self.memory_bytes = max(MIN_MEMORY_BYTES, DEFAULT_MEMORY_LIMIT_BYTES // threads)
        pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="operation")
        try:
            pending: set[Future[Settled | None]] = {
                pool.submit(work, index) for index in range(len(self.operations))
            }
            while pending:
                done, pending = wait(pending, self.deadline - time.monotonic(), FIRST_COMPLETED)
                if not done:
                    raise self._timed_out()
                yield from (future.result() for future in done)
        finally:
            # Anything still waiting stops (a race's losers, a timeout); a JavaScript loser ends
            # at its operationTimeout, on its thread, without holding the node up.
            self.halt.set()
            pool.shutdown(wait=False, cancel_futures=True)

    def _timed_out(self) -> NodeError:
        if self.node_bound:
            return NodeError("parallel ran past its timeout", code="TIMEOUT", retryable=False)
        limit_ms = round(self.limits.global_timeout_s * 1000)
        return NodeError(f"Global timeout exceeded ({limit_ms}ms)", code="TIMEOUT", retryable=False)

    def _one(self, index: int, fail_fast: bool) -> Settled | None:
        """Run operation `index`, or nothing after a failure under failFast."""
        if (fail_fast and self.failed.is_set()) or self.halt.is_set():
            return None
        end = min(self.deadline, time.monotonic() + self.limits.operation_timeout_s)
        operation = self.operations[index]
        try:
            value = self._perform(index, operation, end)
        except _OperationTimeout:
            if end >= self.deadline:  # the global (or the node's) limit ended it: all fail
                raise self._timed_out() from None
            limit_ms = round(self.limits.operation_timeout_s * 1000)
            message = f"Operation {index} timed out after {limit_ms}ms"
        except NodeError as exc:
            message = str(exc)
        else:
            record = {"index": index, "input": operation, "result": value}
            record["timestamp"] = iso_timestamp()
            return Settled(index, True, record, time.monotonic())
        self.failed.set()
        return Settled(index, False, message, time.monotonic())

    def _perform(self, index: int, operation: Any, end: float) -> Any:
        """What the operation does (see the module's docstring)."""
        if not isinstance(operation, dict) or not {"expression", "delay"} & operation.keys():
            return operation
        if not self.limits.run_code and "expression" in operation:
            return operation  # from data: a value, never code
        delay = operation.get("delay", 0)
        if isinstance(delay, bool) or not isinstance(delay, int | float) or delay < 0:
            raise NodeError(f"operations[{index}].delay: must be a number of ms, at least 0")
        self._wait(delay / 1000, end)
        if "expression" not in operation:
            return operation.get("value")
        expression = operation["expression"]
        if not isinstance(expression, str):
            raise NodeError(f"operations[{index}].expression: must be a string")
        left = end - time.monotonic()
        if left <= 0:
            raise _OperationTimeout
        try:
            variables = {"index": index, "input": operation.get("input")}
            return evaluate_expression(expression, variables, left, self.memory_bytes)
        except NodeError as exc:
            if exc.code == "TIMEOUT":
                raise _OperationTimeout from None
            raise

    def _wait(self, seconds: float, end: float) -> None:
        """Sleep `seconds`, unless the operation's end comes first or the node must stop."""
        until = time.monotonic() + seconds
        while (now := time.monotonic()) < until:
            if now >= end:
                raise _OperationTimeout
            if self.halt.wait(min(POLL_S, until - now, end - now)):
                raise NodeStopped("the operation was stopped")
            if self.stop.is_set():
                raise NodeStopped("parallel stopped: the execution was cancelled")
