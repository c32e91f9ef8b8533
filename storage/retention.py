"""Retention of finished executions: their keys expire sooner than a running one's."""

from __future__ import annotations

import redis

from storage import keys
from storage.scripts import source


def expire_execution(client: redis.Redis, execution_id: str, ttl_s: int) -> bool:
    """Give every key of a finished execution `ttl_s` seconds to live, in one script (so no
    reader sees half an execution); False when it is not over (a retry reopened it)."""
    script = client.register_script(source("expire_finished"))
    execution_keys = keys.execution_keys(execution_id)
    meta = keys.meta(execution_id)
    ordered = [meta, *(key for key in execution_keys if key != meta)]
    return bool(script(keys=ordered, args=[ttl_s]))
