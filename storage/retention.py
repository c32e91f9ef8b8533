"""Retention of finished executions: their keys expire sooner than a running one's."""

from __future__ import annotations

import redis

from storage import keys


def expire_execution(client: redis.Redis, execution_id: str, ttl_s: int) -> None:
    """Give every key of the execution `ttl_s` seconds to live, in one round trip."""
    # MULTI/EXEC: the keys get their deadline together, so no reader sees half an execution.
    pipe = client.pipeline(transaction=True)
    for key in keys.execution_keys(execution_id):
        pipe.expire(key, ttl_s)
    pipe.execute()
