"""The Lua scripts of the Redis stores: `storage/lua/<name>.lua`, each run after the shared
`prelude.lua` (helpers and the key layout); the state store's are registered once per client
(`Scripts`), retention's and the rate limiter's by their modules.

Each script binds its KEYS and ARGV to named locals at its top and documents them there.
"""

from __future__ import annotations

import functools
import logging
from importlib import resources
from typing import Any

import redis
from redis.commands.core import Script

log = logging.getLogger(__name__)

PRELUDE = "prelude"
NAMES = (
    "create",
    "load",
    "complete",
    "set_node",
    "progress",
    "transition",
    "step",
    "finish",
    "expand",
    "heartbeat",
    "cancel",
    "reopen",
    "note_lapsed",
    "release_lock",
    "park",
    "signal",
    "wake",
)
# storage/retention.py, storage/rate_limits.py, storage/concurrency.py
OTHERS = ("expire_finished", "take_token", "release_slot", "claim_slot")
# Behind Sentinels these return once a replica holds their writes: an accepted execution is
# not lost to a failover (docs/sentinel.md). Other changes a failover may undo are redone.
DURABLE = frozenset({"create"})
REPLICA_WAIT_MS = 1000  # then go on: a replica that is down must not stop the work


@functools.cache
def source(name: str) -> str:
    """The text Redis runs for script `name`: the prelude, then the script."""
    return _read(PRELUDE) + "\n" + _read(name)


def _read(name: str) -> str:
    return resources.files("storage").joinpath("lua", f"{name}.lua").read_text(encoding="utf-8")


class Scripts:
    """Every state script registered with one client (EVALSHA, loaded on first use and
    again after a NOSCRIPT: a promoted replica has none cached); the DURABLE ones wait for
    `replicas` replicas."""

    def __init__(self, client: redis.Redis, replicas: int = 0) -> None:
        self._client = client
        self._scripts = {name: client.register_script(source(name)) for name in NAMES}
        self.replicas = replicas

    def __call__(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """Run script `name` with `keys` and `args`; its reply."""
        script: Script = self._scripts[name]
        if not self.replicas or name not in DURABLE:
            return script(keys=keys, args=args)
        pipe = self._client.pipeline(transaction=False)  # WAIT covers its connection's writes
        script(keys=keys, args=args, client=pipe)
        pipe.wait(self.replicas, REPLICA_WAIT_MS)
        reply, acknowledged = pipe.execute()
        if acknowledged < self.replicas:
            log.warning("%s: %d of %d replicas hold it", name, acknowledged, self.replicas)
        return reply
