"""Redis work counters: INFO commandstats and read events, and the client's own round trips."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import redis
from redis.connection import AbstractConnection

# Our own measuring commands, left out of the counts.
_OWN_COMMANDS = frozenset({"info", "config|resetstat"})
# `INFO stats` is read once after the reset; its own read event is counted.
_OWN_READS = 1
_SEND = AbstractConnection.send_packed_command


@dataclass(frozen=True)
class RedisCounts:
    """What Redis did since the last CONFIG RESETSTAT."""

    calls: Counter[str]  # by command; includes commands run inside scripts and MULTI/EXEC
    reads: int  # read events: one per request or pipeline the server received, about
    bytes_in: int

    @property
    def commands(self) -> int:
        """Every command Redis executed."""
        return sum(self.calls.values())


def reset_stats(client: redis.Redis) -> None:
    """Zero Redis's command and network statistics."""
    client.config_resetstat()


def read_stats(client: redis.Redis) -> RedisCounts:
    """The counts since `reset_stats`, without our own INFO and CONFIG calls."""
    stats: dict[str, Any] = client.info("stats")
    commandstats: dict[str, Any] = client.info("commandstats")
    calls: Counter[str] = Counter()
    for key, value in commandstats.items():
        name = key.removeprefix("cmdstat_")
        if name not in _OWN_COMMANDS:
            calls[name] = int(value["calls"])
    return RedisCounts(
        calls=calls,
        reads=int(stats["total_reads_processed"]) - _OWN_READS,
        bytes_in=int(stats["total_net_input_bytes"]),
    )


class SendCounter:
    """Requests this process sent to Redis (a pipeline or transaction is one)."""

    def __init__(self) -> None:
        self.sends = 0
        self._lock = threading.Lock()

    def add(self) -> None:
        """Count one request."""
        with self._lock:
            self.sends += 1


@contextmanager
def counted_sends() -> Iterator[SendCounter]:
    """Count every request redis-py (and so kombu) sends from this process in the block."""
    counter = SendCounter()
    original = cast(Callable[[AbstractConnection, Any, bool], None], _SEND)

    def counting(self: AbstractConnection, command: Any, check_health: bool = True) -> None:
        counter.add()
        original(self, command, check_health)

    AbstractConnection.send_packed_command = counting  # type: ignore[method-assign]
    try:
        yield counter
    finally:
        AbstractConnection.send_packed_command = _SEND  # type: ignore[method-assign]
