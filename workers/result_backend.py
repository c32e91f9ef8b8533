"""Celery's Redis result backend, minus the result subscriptions nobody reads.

Conductor never waits on Celery results (outcomes travel through its own keys), but Celery
subscribes to every group member's result channel when it freezes a group, in clients and in
workers alike. Those subscriptions cost round trips and leak. Chord joins are unaffected: they
use the backend's counters, not subscriptions.
"""

from __future__ import annotations

from typing import Any

from celery.backends.redis import RedisBackend, SentinelBackend

BACKEND_PATH = "workers.result_backend:UnwatchedRedisBackend"
SENTINEL_BACKEND_PATH = "workers.result_backend:UnwatchedSentinelBackend"


class NoSubscriptions:
    """Overrides of a Redis result backend that track (and subscribe to) nothing."""

    def add_pending_result(
        self, result: Any, weak: bool = False, start_drainer: bool = True
    ) -> Any:
        """Track nothing."""
        return result

    def remove_pending_result(self, result: Any) -> Any:
        """Nothing was tracked."""
        return result


class UnwatchedRedisBackend(NoSubscriptions, RedisBackend):
    """RedisBackend that never subscribes to pending results."""


class UnwatchedSentinelBackend(NoSubscriptions, SentinelBackend):
    """SentinelBackend (the primary found through Sentinels) that never subscribes."""
