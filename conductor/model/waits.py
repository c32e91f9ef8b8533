"""What a parked node waits for, and what ended its wait (docs/waits.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# A parked node's wake-up that was fired (its execution re-sent) comes due again this much
# later unless the node settled meanwhile: a dispatcher that died mid-send is made good.
WAKE_RETRY_MS = 60_000
# Signals an execution keeps for nodes that do not wait for them yet, at most.
MAX_PENDING_SIGNALS = 100  # of at most 1 MiB each: 100 MiB of Redis at worst


@dataclass(frozen=True)
class Wait:
    """A wait: for the signal `signal` (None: for the time alone) at most `timeout_ms`."""

    timeout_ms: int
    signal: str | None = None


@dataclass(frozen=True)
class Arrival:
    """What ended a wait: the payload of signal `signal`, or the time running out."""

    signal: str | None = None
    payload: Any = None
    timed_out: bool = False
