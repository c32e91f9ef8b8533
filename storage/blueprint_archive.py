"""Blueprints as submitted, by content digest, on their way to the history store.

A submission puts its Blueprint here (a key per distinct Blueprint, kept for the execution
state's TTL); execution.queued carries only the digest, so events stay small, and the recorder
copies the text into the history store's `blueprints` table when it records that event.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from typing import Any, Protocol

import redis

from storage import keys


def blueprint_digest(text: str) -> str:
    """The archive's key for a Blueprint's canonical JSON text."""
    return hashlib.sha256(text.encode()).hexdigest()


class BlueprintArchive(Protocol):
    """Blueprint texts by digest."""

    def put(self, text: str) -> str:
        """Keep `text` (again: its time to live starts over); return its digest."""

    def texts(self, digests: Collection[str]) -> dict[str, str]:
        """The texts of those `digests` still kept."""


class RedisBlueprintArchive:
    """One string key per Blueprint, expiring `ttl_s` after its latest submission."""

    def __init__(self, client: redis.Redis, ttl_s: int) -> None:
        self.client = client
        self.ttl_s = ttl_s

    def put(self, text: str) -> str:
        """SET with EX."""
        digest = blueprint_digest(text)
        self.client.set(keys.blueprint_archive(digest), text, ex=self.ttl_s)
        return digest

    def texts(self, digests: Collection[str]) -> dict[str, str]:
        """One MGET."""
        wanted = sorted(digests)
        if not wanted:
            return {}
        found: Any = self.client.mget([keys.blueprint_archive(digest) for digest in wanted])
        return {
            digest: text.decode() if isinstance(text, bytes) else str(text)
            for digest, text in zip(wanted, found, strict=True)
            if text is not None
        }


class MemoryBlueprintArchive:
    """The in-memory twin (no expiry)."""

    def __init__(self) -> None:
        self.kept: dict[str, str] = {}

    def put(self, text: str) -> str:
        """Keep it in a dict."""
        digest = blueprint_digest(text)
        self.kept[digest] = text
        return digest

    def texts(self, digests: Collection[str]) -> dict[str, str]:
        """The kept ones."""
        return {digest: self.kept[digest] for digest in digests if digest in self.kept}
