"""`Waits`: parked nodes, the signals sent to an execution and the wake-ups that send a parked
node's execution again (docs/waits.md). Part of every StateStore: RedisWaits
(storage/redis_waits.py, Lua) and its twin MemoryWaits (storage/memory_waits.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from conductor.model.waits import Arrival, Wait

# A signal's waiting nodes come due this soon: its sender sends their execution itself, and the
# wake-up makes that good if the sender dies first.
SIGNAL_GRACE_MS = 30_000


class Parking(StrEnum):
    """What `park` did."""

    PARKED = "parked"  # no attempt holds the node now; a signal or its wake-up sends it again
    ARRIVED = "arrived"  # the wait is over: the arrival says with what
    FENCED = "fenced"  # the attempt does not hold the node, or the execution is over


@dataclass(frozen=True)
class ParkReply:
    """`park`'s reply: the arrival when ARRIVED, the wake time (ms, the store's clock) when
    PARKED."""

    parking: Parking
    arrival: Arrival | None = None
    wake_ms: int | None = None


class Sent(StrEnum):
    """What `signal` did."""

    KEPT = "kept"  # kept for the execution's waiting nodes
    NOT_FOUND = "not_found"  # no such execution (or it expired)
    OVER = "over"  # the execution is over: nothing will take it
    FULL = "full"  # it keeps MAX_PENDING_SIGNALS already


@dataclass(frozen=True)
class SignalReceipt:
    """`signal`'s reply: the execution's status when it is over, and which nodes were parked
    waiting for the signal (to send again now)."""

    sent: Sent
    woken: tuple[str, ...] = ()
    status: str | None = None


@dataclass(frozen=True)
class WakeUp:
    """A claimed wake-up: the execution to send again, for its parked node `key`."""

    execution_id: str
    key: str


class Waits(Protocol):
    """Parking nodes, keeping signals, claiming wake-ups."""

    def park(self, execution_id: str, key: str, wait: Wait, *, attempt: int) -> ParkReply:
        """While `attempt` holds the node: the arrival that ends its wait (a signal kept for
        it, the oldest first, or its time run out; the same again for a later attempt), or
        park it until one comes."""

    def signal(
        self, execution_id: str, name: str, payload: str, *, max_pending: int
    ) -> SignalReceipt:
        """Keep signal `name` with its `payload` (JSON text) for the execution's waiting
        nodes; the nodes parked waiting for it have their wake-ups due soon."""

    def claim_wakeups(self, limit: int, retry_ms: int) -> list[WakeUp]:
        """The wake-ups due now (at most `limit`); each comes due again `retry_ms` later
        unless its node settles or parks anew."""

    def drop_wakeups(self, wakeups: list[WakeUp]) -> None:
        """Forget wake-ups (their execution is over, paused or gone)."""

    def parked(self, execution_id: str) -> dict[str, str]:
        """Parked node key -> the signal it waits for ('' for the time alone)."""

    def await_wakeup(self, timeout_s: float) -> bool:
        """Until a wake-up is made due at once (a child execution ended: docs/children.md) or
        `timeout_s` passed; whether one was."""


def arrival_of(text: str) -> Arrival:
    """An arrival as stored on its node: `{"signal", "payload"}` or `{"signal", "timedOut"}`."""
    data = json.loads(text)
    return Arrival(
        signal=data.get("signal"),
        payload=data.get("payload"),
        timed_out=bool(data.get("timedOut")),
    )


def wakeup_member(execution_id: str, key: str) -> str:
    """A wake-up's member in the store."""
    return f"{execution_id}\n{key}"


def wakeup_of(member: str) -> WakeUp:
    """The wake-up a member names."""
    execution_id, _, key = member.partition("\n")
    return WakeUp(execution_id, key)
