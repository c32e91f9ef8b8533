"""The in-memory twin of RedisWaits (storage/waits.py): MemoryStateStore's part, over its
dicts, with the same replies and events as the Lua scripts."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from conductor.model.children import child_signal
from conductor.model.waits import Wait
from storage.children import child_ended
from storage.events import Event, EventType
from storage.statuses import FINISHED_NODE, LIVE, NodeStatus
from storage.waits import (
    SIGNAL_GRACE_MS,
    Parking,
    ParkReply,
    Sent,
    SignalReceipt,
    WakeUp,
    arrival_of,
)


@dataclass
class _WaitState:
    signals: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # (name, payload)
    waiting: dict[str, dict[str, str]] = field(default_factory=dict)
    wakeups: dict[WakeUp, int] = field(default_factory=dict)
    nudges: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))


class MemoryWaits:
    """Waits in dicts (MemoryStateStore's base)."""

    meta: dict[str, dict[str, str]]
    nodes: dict[str, dict[str, str]]
    events_of: dict[str, list[Event]]

    if TYPE_CHECKING:  # MemoryLiveIndex's and MemoryStateStore's

        def clock_ms(self) -> int: ...

        def _emit(
            self, execution_id: str, kind: EventType, node_id: str | None, data: dict[str, Any]
        ) -> None: ...

    @cached_property
    def wait_state(self) -> _WaitState:
        """Signals kept, parked nodes and wake-ups."""
        return _WaitState()

    def park(self, execution_id: str, key: str, wait: Wait, *, attempt: int) -> ParkReply:
        """As park.lua."""
        meta = self.meta.get(execution_id, {})
        nodes = self.nodes.get(execution_id, {})
        status = NodeStatus(nodes.get(f"{key}:status", NodeStatus.PENDING.value))
        held = status is NodeStatus.RUNNING and nodes.get(f"{key}:attempts") == str(attempt)
        if meta.get("status") not in ("running", "paused") or status in FINISHED_NODE or not held:
            return ParkReply(Parking.FENCED)
        state, clock = self.wait_state, self.clock_ms()
        wake = int(nodes.setdefault(f"{key}:wake_ms", str(clock + wait.timeout_ms)))
        arrival = nodes.get(f"{key}:arrival") or self._take(execution_id, wait.signal)
        if arrival is None and clock >= wake:
            arrival = json.dumps({"signal": wait.signal, "timedOut": True})
        if arrival is not None:
            nodes[f"{key}:arrival"] = arrival
            state.waiting.get(execution_id, {}).pop(key, None)
            state.wakeups.pop(WakeUp(execution_id, key), None)
            return ParkReply(Parking.ARRIVED, arrival=arrival_of(arrival))
        deadline = int(meta["deadline_ms"]) if meta.get("deadline_ms") else wake
        nodes.update({f"{key}:lease_ms": "0", f"{key}:base": str(attempt)})
        state.waiting.setdefault(execution_id, {})[key] = wait.signal or ""
        state.wakeups[WakeUp(execution_id, key)] = min(wake, deadline)
        message = f"waiting for signal {wait.signal}" if wait.signal else f"waiting until {wake}"
        waiting = {"signal": wait.signal, "wake_ms": wake}
        data = {"progress": 0, "message": message, "waiting": waiting}
        self._emit(execution_id, EventType.NODE_PROGRESS, key, data)
        return ParkReply(Parking.PARKED, wake_ms=wake)

    def _take(self, execution_id: str, name: str | None) -> str | None:
        """The oldest signal `name` kept, taken, as an arrival."""
        kept = self.wait_state.signals.get(execution_id, [])
        for index, (signal, payload) in enumerate(kept):
            if signal == name:
                del kept[index]
                return json.dumps({"signal": name, "payload": json.loads(payload)})
        return None

    def signal(
        self, execution_id: str, name: str, payload: str, *, max_pending: int
    ) -> SignalReceipt:
        """As signal.lua."""
        meta = self.meta.get(execution_id)
        if meta is None:
            return SignalReceipt(Sent.NOT_FOUND)
        if meta["status"] not in LIVE:
            return SignalReceipt(Sent.OVER, status=meta["status"])
        state = self.wait_state
        kept = state.signals.setdefault(execution_id, [])
        if len(kept) >= max_pending:
            return SignalReceipt(Sent.FULL)
        kept.append((name, payload))
        if meta["status"] != "running" or meta.get("queued_reason"):  # resume/admission takes it
            return SignalReceipt(Sent.KEPT)
        woken = tuple(k for k, v in state.waiting.get(execution_id, {}).items() if v == name)
        for key in woken:
            state.wakeups[WakeUp(execution_id, key)] = self.clock_ms() + SIGNAL_GRACE_MS
        return SignalReceipt(Sent.KEPT, woken=woken)

    def hand_to_parent(self, execution_id: str, status: str) -> None:
        """As finish.lua for a child execution: its end, a signal its parent's node takes."""
        meta = self.meta[execution_id]
        parent_id, node_key = meta.get("parent_id"), meta.get("parent_node")
        parent = self.meta.get(parent_id or "")
        if not parent_id or not node_key or parent is None or parent["status"] not in LIVE:
            return
        payload = child_ended(execution_id, status)
        self.wait_state.signals.setdefault(parent_id, []).append((child_signal(node_key), payload))
        if parent["status"] == "running" and node_key in self.wait_state.waiting.get(parent_id, {}):
            self.wait_state.wakeups[WakeUp(parent_id, node_key)] = self.clock_ms()
            self.wait_state.nudges.release()

    def drop_handoffs(self, execution_id: str, node_key: str) -> None:
        """As reopen.lua: a reset `blueprint` node waits for its child's next end."""
        kept = self.wait_state.signals.get(execution_id, [])
        kept[:] = [entry for entry in kept if entry[0] != child_signal(node_key)]

    def claim_wakeups(self, limit: int, retry_ms: int) -> list[WakeUp]:
        """As wake.lua."""
        clock, wakeups = self.clock_ms(), self.wait_state.wakeups
        due = sorted((at, w.execution_id, w.key) for w, at in wakeups.items() if at <= clock)
        claimed = [WakeUp(execution_id, key) for _, execution_id, key in due[:limit]]
        for wakeup in claimed:
            wakeups[wakeup] = clock + retry_ms
        return claimed

    def drop_wakeups(self, wakeups: list[WakeUp]) -> None:
        """Forget them."""
        for wakeup in wakeups:
            self.wait_state.wakeups.pop(wakeup, None)

    def await_wakeup(self, timeout_s: float) -> bool:
        """As RedisWaits': a nudge from hand_to_parent."""
        return self.wait_state.nudges.acquire(timeout=timeout_s)

    def parked(self, execution_id: str) -> dict[str, str]:
        """Parked node key -> signal name."""
        return dict(self.wait_state.waiting.get(execution_id, {}))
