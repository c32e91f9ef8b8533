"""Parked nodes, signals and wake-ups in Redis (storage/lua/park.lua, signal.lua, wake.lua):
RedisStateStore's part behind storage/waits.py."""

from __future__ import annotations

import uuid

import redis

from conductor.model.waits import Wait
from storage import keys
from storage.redis_live import text
from storage.scripts import Scripts
from storage.statuses import now_ms
from storage.waits import (
    SIGNAL_GRACE_MS,
    Parking,
    ParkReply,
    Sent,
    SignalReceipt,
    WakeUp,
    arrival_of,
    wakeup_member,
    wakeup_of,
)

_SENT = {-1: Sent.NOT_FOUND, 0: Sent.OVER, -2: Sent.FULL, 1: Sent.KEPT}


class RedisWaits:
    """Waits over one Redis client (RedisStateStore's base)."""

    client: redis.Redis
    scripts: Scripts

    def park(self, execution_id: str, key: str, wait: Wait, *, attempt: int) -> ParkReply:
        """One script: the arrival, or the node parked with its wake-up and event."""
        reply = self.scripts(
            "park",
            [
                keys.meta(execution_id),
                keys.nodes(execution_id),
                keys.signals(execution_id),
                keys.waiting(execution_id),
                keys.EVENTS_STREAM,
                keys.events_log(execution_id),
                keys.WAKEUPS,
            ],
            [
                keys.events_channel(execution_id),
                execution_id,
                key,
                attempt,
                wait.signal or "",
                wait.timeout_ms,
                now_ms(),
                str(uuid.uuid4()),
            ],
        )
        if int(reply[0]) == 2:
            return ParkReply(Parking.ARRIVED, arrival=arrival_of(text(reply[1])))
        if int(reply[0]) == 1:
            return ParkReply(Parking.PARKED, wake_ms=int(reply[1]))
        return ParkReply(Parking.FENCED)

    def signal(
        self, execution_id: str, name: str, payload: str, *, max_pending: int
    ) -> SignalReceipt:
        """One script: keep it, and bring the wake-ups of the nodes waiting for it forward."""
        reply = self.scripts(
            "signal",
            [
                keys.meta(execution_id),
                keys.signals(execution_id),
                keys.waiting(execution_id),
                keys.WAKEUPS,
            ],
            [execution_id, name, payload, max_pending, SIGNAL_GRACE_MS],
        )
        sent = _SENT[int(reply[0])]
        if sent is Sent.OVER:
            return SignalReceipt(sent, status=text(reply[1]))
        return SignalReceipt(sent, woken=tuple(text(key) for key in reply[1:]))

    def claim_wakeups(self, limit: int, retry_ms: int) -> list[WakeUp]:
        """One script: the due members, each due again `retry_ms` later."""
        members = self.scripts("wake", [keys.WAKEUPS], [limit, retry_ms])
        return [wakeup_of(text(member)) for member in members]

    def drop_wakeups(self, wakeups: list[WakeUp]) -> None:
        """ZREM them."""
        if wakeups:
            members = [wakeup_member(w.execution_id, w.key) for w in wakeups]
            self.client.zrem(keys.WAKEUPS, *members)

    def await_wakeup(self, timeout_s: float) -> bool:
        """BLPOP a nudge finish.lua pushed."""
        # at least 10 ms: BLPOP's timeout 0 would block for ever
        found = self.client.blpop([keys.WAKEUP_NUDGES], timeout=max(timeout_s, 0.01))
        return found is not None

    def parked(self, execution_id: str) -> dict[str, str]:
        """The waiting hash."""
        found = self.client.hgetall(keys.waiting(execution_id))
        return {text(key): text(value) for key, value in found.items()}
