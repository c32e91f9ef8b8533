"""The in-memory twin's pause, resume and debugging step (storage/lua/transition.lua,
step.lua, and load.lua's breakpoint check)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection
from typing import Any

from conductor.model.breakpoints import template_key
from storage.events import Event, EventType
from storage.execution_meta import PASSED_PREFIX
from storage.memory_live import MemoryLiveIndex
from storage.state import ExecutionStatus, NodeStatus, StateChange, now_ms


class MemoryControl(MemoryLiveIndex):
    """Pause, resume and step over MemoryStateStore's dicts, and its events."""

    nodes: dict[str, dict[str, str]]
    events_of: dict[str, list[Event]]

    def _emit(
        self, execution_id: str, kind: EventType, node_id: str | None, data: dict[str, Any]
    ) -> None:
        events = self.events_of[execution_id]
        events.append(
            Event(
                id=str(uuid.uuid4()),
                execution_id=execution_id,
                seq=len(events) + 1,
                type=kind,
                node_id=node_id,
                ts=now_ms() / 1000,
                data=data,
            )
        )

    def transition(
        self,
        execution_id: str,
        allowed: frozenset[ExecutionStatus],
        target: ExecutionStatus,
        event: EventType,
    ) -> StateChange:
        """Move if allowed; a move to running ends stepping."""
        meta = self.meta.get(execution_id)
        if meta is None:
            return StateChange.NOT_FOUND
        if ExecutionStatus(meta["status"]) not in allowed:
            return StateChange.CONFLICT
        meta["status"] = target.value
        if target is ExecutionStatus.PAUSED:
            self.forget_live(execution_id)
        else:
            meta.pop("step", None)
            self.touch_live(execution_id, now_ms())
        self._emit(execution_id, event, None, {"status": target.value})
        return StateChange.DONE

    def step(self, execution_id: str, chosen: Collection[str]) -> StateChange:
        """Paused -> running, only `chosen` may start."""
        meta = self.meta.get(execution_id)
        if meta is None:
            return StateChange.NOT_FOUND
        if meta["status"] != ExecutionStatus.PAUSED:
            return StateChange.CONFLICT
        meta.update(status=ExecutionStatus.RUNNING.value, step=json.dumps(sorted(chosen)))
        self.touch_live(execution_id, now_ms())
        data = {"status": ExecutionStatus.RUNNING.value, "step": sorted(chosen)}
        self._emit(execution_id, EventType.EXECUTION_RESUMED, None, data)
        return StateChange.DONE

    def _debug_stop(self, execution_id: str, key: str, node_id: str) -> str | None:
        """'hold' (the execution is now paused before `key`), 'wait', or None (run it)."""
        meta = self.meta[execution_id]
        stop = self._stop_kind(execution_id, key, node_id)
        if stop == "hold":
            meta.update({"status": ExecutionStatus.PAUSED.value, PASSED_PREFIX + key: "1"})
            self.forget_live(execution_id)
            data = {"status": "paused", "breakpoint": key, "step": "step" in meta}
            self._emit(execution_id, EventType.EXECUTION_PAUSED, None, data)
        return stop

    def _stop_kind(self, execution_id: str, key: str, node_id: str) -> str | None:
        meta, nodes = self.meta[execution_id], self.nodes[execution_id]
        if "step" in meta:
            chosen = json.loads(meta["step"])
            if key in chosen:
                return None
            return "wait" if any(self._in_flight(nodes, k) for k in chosen) else "hold"
        if PASSED_PREFIX + key in meta or "breakpoints" not in meta:
            return None
        names = json.loads(meta["breakpoints"])
        return "hold" if {key, template_key(key), node_id} & set(names) else None

    @staticmethod
    def _in_flight(nodes: dict[str, str], key: str) -> bool:
        status = nodes.get(f"{key}:status", NodeStatus.PENDING.value)
        leased = int(nodes.get(f"{key}:lease_ms", "0")) > now_ms()
        return status == NodeStatus.PENDING or (status == NodeStatus.RUNNING and leased)
