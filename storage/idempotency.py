"""Idempotency keys: the first request to claim a key names the execution every repeat gets."""

from __future__ import annotations

import hashlib
import time
from typing import Any, Protocol

import redis

from storage import keys


class IdempotencyClaims(Protocol):
    """Claims on idempotency keys, each holding a text value for `ttl_s` seconds."""

    def claim(self, key: str, value: str, ttl_s: int) -> bool:
        """Hold `key` with `value` unless someone holds it; True when this call took it."""

    def holder(self, key: str) -> str | None:
        """The value `key` holds (None: unclaimed or expired)."""


def _claim_key(key: str) -> str:
    return keys.idempotency(hashlib.sha256(key.encode()).hexdigest())


class RedisIdempotency:
    """Claims as strings with a TTL (SET NX EX), named by the key's SHA-256."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def claim(self, key: str, value: str, ttl_s: int) -> bool:
        """SET NX EX."""
        return bool(self.client.set(_claim_key(key), value, nx=True, ex=ttl_s))

    def holder(self, key: str) -> str | None:
        """GET."""
        value: Any = self.client.get(_claim_key(key))
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)


class MemoryIdempotency:
    """The in-memory twin."""

    def __init__(self) -> None:
        self.claims: dict[str, tuple[str, float]] = {}

    def claim(self, key: str, value: str, ttl_s: int) -> bool:
        """Take the key when it is free or expired."""
        if self.holder(key) is not None:
            return False
        self.claims[key] = (value, time.monotonic() + ttl_s)
        return True

    def holder(self, key: str) -> str | None:
        """The unexpired value."""
        held = self.claims.get(key)
        if held is None or held[1] <= time.monotonic():
            return None
        return held[0]


def as_idempotency_claims(source: IdempotencyClaims | redis.Redis) -> IdempotencyClaims:
    """Claims, given them or a Redis client."""
    return RedisIdempotency(source) if isinstance(source, redis.Redis) else source
