"""Retention of finished executions: their keys expire sooner than a running one's."""

from __future__ import annotations

import redis

from storage import keys

# KEYS: meta, then every other key of the execution. ARGV: ttl (s). Only while the execution is
# over: a retry that reopened it in between keeps its running TTL.
_EXPIRE_FINISHED = """
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'succeeded' and status ~= 'failed' and status ~= 'cancelled' then return 0 end
for _, key in ipairs(KEYS) do redis.call('EXPIRE', key, ARGV[1]) end
return 1
"""


def expire_execution(client: redis.Redis, execution_id: str, ttl_s: int) -> bool:
    """Give every key of a finished execution `ttl_s` seconds to live, in one script (so no
    reader sees half an execution); False when it is not over (a retry reopened it)."""
    script = client.register_script(_EXPIRE_FINISHED)
    execution_keys = keys.execution_keys(execution_id)
    meta = keys.meta(execution_id)
    ordered = [meta, *(key for key in execution_keys if key != meta)]
    return bool(script(keys=ordered, args=[ttl_s]))
