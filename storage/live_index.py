"""`LiveIndex`: what the reconciler needs of the state store beside node state: the index of
live executions by last progress, the store's clock, per-execution repair counters, the queue
backlog, and a lock so one pass runs at a time. Part of every StateStore."""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol


class LiveIndex(Protocol):
    """The live executions and the reconciler's bookkeeping."""

    def clock_ms(self) -> int:
        """The store's clock (ms), which leases and the live index run on."""

    def live_executions(self, idle_since_ms: int, start: int = 0, limit: int = 500) -> list[str]:
        """Live executions that made no progress since `idle_since_ms`, oldest first, from
        the `start`th."""

    def touch_live(self, execution_id: str, at_ms: int) -> None:
        """Note progress at `at_ms` (the store's clock)."""

    def forget_live(self, execution_id: str) -> None:
        """Drop an execution from the live index (it is over, gone, or paused)."""

    def last_progress_ms(self, execution_id: str) -> int | None:
        """When the execution last made progress; None when it is not in the index."""

    def note_lapsed(self, execution_id: str, attempts: dict[str, int]) -> int:
        """Remember that these node attempts (node key -> attempt) lost their lease; how many
        were not remembered before (each lost attempt counts once)."""

    def count_redispatch(self, execution_id: str) -> int:
        """Count one more re-dispatch of a stalled execution; the count now."""

    def queue_backlog(self, queues: Collection[str]) -> bool:
        """Whether one of these broker queues still holds messages."""

    def acquire_lock(self, name: str, ttl_ms: int) -> str | None:
        """Take the lock `name` for `ttl_ms` unless another holds it; its token, or None."""

    def release_lock(self, name: str, token: str) -> bool:
        """Release the lock if `token` still holds it (it may have expired and been taken)."""
