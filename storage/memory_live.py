"""The in-memory twin of the Redis live index and reconciler bookkeeping (storage/live_index)."""

from __future__ import annotations

import uuid
from collections.abc import Collection

from storage.execution_meta import LAPSED_PREFIX
from storage.statuses import now_ms


class MemoryLiveIndex:
    """The live index, counters and locks, in dicts (MemoryStateStore's base)."""

    meta: dict[str, dict[str, str]]

    def __init__(self) -> None:
        self.live: dict[str, int] = {}
        self.locks: dict[str, tuple[str, int]] = {}  # name -> (token, expires at ms)
        self.queues: dict[str, int] = {}  # queue -> messages waiting (set by tests)

    def clock_ms(self) -> int:
        """The wall clock."""
        return now_ms()

    def live_executions(self, idle_since_ms: int, start: int = 0, limit: int = 500) -> list[str]:
        """Idle live executions, oldest first."""
        idle = sorted((at, key) for key, at in self.live.items() if at <= idle_since_ms)
        return [key for _, key in idle[start : start + limit]]

    def touch_live(self, execution_id: str, at_ms: int) -> None:
        """Note progress."""
        self.live[execution_id] = at_ms

    def forget_live(self, execution_id: str) -> None:
        """Drop from the index."""
        self.live.pop(execution_id, None)

    def last_progress_ms(self, execution_id: str) -> int | None:
        """Last progress, if indexed."""
        return self.live.get(execution_id)

    def note_lapsed(self, execution_id: str, attempts: dict[str, int]) -> int:
        """Remember lost attempts; how many were new."""
        meta = self.meta.get(execution_id)
        if meta is None:
            return 0
        fresh = {
            f"{LAPSED_PREFIX}{key}": str(attempt)
            for key, attempt in attempts.items()
            if meta.get(f"{LAPSED_PREFIX}{key}") != str(attempt)
        }
        meta.update(fresh)
        return len(fresh)

    def count_redispatch(self, execution_id: str) -> int:
        """One more re-dispatch."""
        meta = self.meta[execution_id]
        meta["redispatched"] = str(int(meta.get("redispatched", "0")) + 1)
        return int(meta["redispatched"])

    def queue_backlog(self, queues: Collection[str]) -> bool:
        """Whether a queue holds messages (as tests set them)."""
        return any(self.queues.get(queue, 0) > 0 for queue in queues)

    def acquire_lock(self, name: str, ttl_ms: int) -> str | None:
        """Take the lock unless held and unexpired."""
        held = self.locks.get(name)
        if held is not None and held[1] > now_ms():
            return None
        token = str(uuid.uuid4())
        self.locks[name] = (token, now_ms() + ttl_ms)
        return token

    def release_lock(self, name: str, token: str) -> bool:
        """Release if still ours."""
        held = self.locks.get(name)
        if held is None or held[0] != token or held[1] <= now_ms():
            return False
        del self.locks[name]
        return True
