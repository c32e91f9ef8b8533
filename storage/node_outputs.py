"""Reading the stored (packed) outputs of an execution's nodes while it is in Redis."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, Protocol

import redis

from storage import keys


class NodeOutputs(Protocol):
    """Packed node outputs (JSON text, or a blob reference) by node key."""

    def outputs(self, execution_id: str, node_keys: Sequence[str]) -> dict[str, str]:
        """The outputs of those of `node_keys` that have one."""

    def every(self, execution_ids: Collection[str]) -> dict[str, dict[str, str]]:
        """Every stored output of each execution (what history keeps when they end)."""


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

    def every(self, execution_ids: Collection[str]) -> dict[str, dict[str, str]]:
        """An HGETALL each, in one pipeline."""
        wanted = sorted(execution_ids)
        pipe = self.client.pipeline(transaction=False)
        for execution_id in wanted:
            pipe.hgetall(keys.outputs(execution_id))
        found: list[Any] = pipe.execute() if wanted else []
        return {
            execution_id: {_text(key): _text(text) for key, text in hashed.items()}
            for execution_id, hashed in zip(wanted, found, strict=True)
        }


class MemoryNodeOutputs:
    """The in-memory twin: outputs put in a dict."""

    def __init__(self) -> None:
        self.stored: dict[str, dict[str, str]] = {}

    def outputs(self, execution_id: str, node_keys: Sequence[str]) -> dict[str, str]:
        """The stored ones."""
        stored = self.stored.get(execution_id, {})
        return {key: stored[key] for key in node_keys if key in stored}

    def every(self, execution_ids: Collection[str]) -> dict[str, dict[str, str]]:
        """All of them."""
        return {
            execution_id: dict(self.stored.get(execution_id, {})) for execution_id in execution_ids
        }


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
