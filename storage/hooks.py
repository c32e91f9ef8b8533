"""Webhook definitions in Redis.

Keys: conductor:hooks (set of names), conductor:hook:<name> (the Hook as JSON).
"""

from __future__ import annotations

import redis

from conductor.model.hook import Hook
from storage.redis_client import redis_client

NAMES = "conductor:hooks"

# Connections one process's store may hold (short commands; beat, CLI, API).
MAX_CONNECTIONS = 8


def hook_key(name: str) -> str:
    """Where hook `name` is stored."""
    return f"conductor:hook:{name}"


class HookExists(ValueError):
    """A hook of that name is already stored."""


class HookNotFound(LookupError):
    """No hook of that name."""


class RedisHooks:
    """The hook store."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    @classmethod
    def connect(cls, url: str, master: str | None = None) -> RedisHooks:
        """A store on its own client of `url` (storage/redis_client.py's policy)."""
        return cls(redis_client(url, master=master, max_connections=MAX_CONNECTIONS))

    def add(self, hook: Hook) -> None:
        """Store a new hook; HookExists when the name is taken."""
        if not self.client.set(hook_key(hook.name), hook.model_dump_json(), nx=True):
            raise HookExists(f"hook {hook.name!r} exists: remove it first")
        self.client.sadd(NAMES, hook.name)

    def get(self, name: str) -> Hook:
        """One hook; HookNotFound when there is none."""
        raw = self.client.get(hook_key(name))
        if raw is None:
            raise HookNotFound(f"no hook {name!r}")
        return Hook.model_validate_json(raw)

    def all(self) -> list[Hook]:
        """Every hook, by name."""
        found = []
        for raw_name in sorted(self.client.smembers(NAMES)):
            name = raw_name.decode() if isinstance(raw_name, bytes) else str(raw_name)
            try:
                found.append(self.get(name))
            except HookNotFound:
                continue
        return found

    def remove(self, name: str) -> None:
        """Delete a hook; HookNotFound when there is none."""
        deleted = self.client.delete(hook_key(name))
        self.client.srem(NAMES, name)
        if not deleted:
            raise HookNotFound(f"no hook {name!r}")

    def close(self) -> None:
        """Drop the connections."""
        self.client.close()
