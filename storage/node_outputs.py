"""Reading the stored (packed) outputs of an execution's nodes while it is in Redis."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import redis

from storage import keys


class NodeOutputs(Protocol):
    """Packed node outputs (JSON text, or a blob reference) by node key."""

    def outputs(self, execution_id: str, node_keys: Sequence[str]) -> dict[str, str]:
        """The outputs of those of `node_keys` that have one."""

    def every(self, execution_id: str) -> dict[str, str]:
        """Every stored output of the execution (what history keeps when it ends)."""


class RedisNodeOutputs:
    """Node outputs from the execution's outputs hash."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def outputs(self, execution_id: str, node_keys: Sequence[str]) -> dict[str, str]:
        """One HMGET."""
        if not node_keys:
            return {}
        texts: Any = self.client.hmget(keys.outputs(execution_id), list(node_keys))
        return {
            key: text.decode() if isinstance(text, bytes) else str(text)
            for key, text in zip(node_keys, texts, strict=True)
            if text is not None
        }

    def every(self, execution_id: str) -> dict[str, str]:
        """One HGETALL."""
        found: Any = self.client.hgetall(keys.outputs(execution_id))
        return {_text(key): _text(text) for key, text in found.items()}


class MemoryNodeOutputs:
    """The in-memory twin: outputs put in a dict."""

    def __init__(self) -> None:
        self.stored: dict[str, dict[str, str]] = {}

    def outputs(self, execution_id: str, node_keys: Sequence[str]) -> dict[str, str]:
        """The stored ones."""
        stored = self.stored.get(execution_id, {})
        return {key: stored[key] for key in node_keys if key in stored}

    def every(self, execution_id: str) -> dict[str, str]:
        """All of them."""
        return dict(self.stored.get(execution_id, {}))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
