"""The Lua scripts of the Redis stores: `storage/lua/<name>.lua`, each run after the shared
`prelude.lua` (helpers and the key layout); the state store's are registered once per client
(`Scripts`), retention's and the rate limiter's by their modules.

Each script binds its KEYS and ARGV to named locals at its top and documents them there.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

import redis
from redis.commands.core import Script

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


@functools.cache
def source(name: str) -> str:
    """The text Redis runs for script `name`: the prelude, then the script."""
    return _read(PRELUDE) + "\n" + _read(name)


def _read(name: str) -> str:
    return resources.files("storage").joinpath("lua", f"{name}.lua").read_text(encoding="utf-8")


class Scripts:
    """Every state script registered with one client (EVALSHA, loaded on first use)."""

    def __init__(self, client: redis.Redis) -> None:
        self._scripts = {name: client.register_script(source(name)) for name in NAMES}

    def __call__(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """Run script `name` with `keys` and `args`; its reply."""
        script: Script = self._scripts[name]
        return script(keys=keys, args=args)
