"""How many WebSocket connections the API holds and how many executions each may follow."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from conductor.model.settings import SettingsError


@dataclass(frozen=True)
class WsLimits:
    """How many connections the API holds and how many executions each may follow."""

    connections: int = 100
    subscriptions: int = 20
    idle_s: int = 300  # a connection that follows nothing and says nothing this long is closed

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WsLimits:
        """CONDUCTOR_WS_MAX_CONNECTIONS, CONDUCTOR_WS_MAX_SUBSCRIPTIONS and
        CONDUCTOR_WS_IDLE_S, else the defaults."""
        env = os.environ if env is None else env
        return cls(
            connections=_positive(env, "CONDUCTOR_WS_MAX_CONNECTIONS", cls.connections),
            subscriptions=_positive(env, "CONDUCTOR_WS_MAX_SUBSCRIPTIONS", cls.subscriptions),
            idle_s=_positive(env, "CONDUCTOR_WS_IDLE_S", cls.idle_s),
        )


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    text = env.get(name)
    if text is None:
        return default
    if not text.strip().isdigit() or int(text) < 1:
        raise SettingsError(f"{name} must be a positive integer, not {text!r}")
    return int(text)
