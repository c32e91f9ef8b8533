"""Concurrency keys: at most `max_running` executions with one key run at once, the rest wait
in line, first in first out (conductor.model.admission).

A new execution takes a slot or joins the line in the script that creates it (create.lua, via
`slot_arguments`); `release_slot.lua` gives a slot back when an execution ends and admits the
next in line, in one step. The reconciler sweeps every key (`sweep`): a slot held by an
execution that is over or gone (its finalize was cut short) is reclaimed there.
"""

from __future__ import annotations

from typing import Any

import redis

from conductor.model.plan import ExecutionPlan
from storage import keys
from storage.event_data import queued_event, waiting_reason, waiting_reason_for
from storage.scripts import source
from storage.statuses import now_ms


def slot_arguments(plan: ExecutionPlan) -> tuple[list[str], list[Any]]:
    """The extra KEYS and ARGV of create.lua for a plan with a concurrency key (none without)."""
    if plan.concurrency_key is None:
        return [], []
    reason = waiting_reason(plan)
    slot_keys = ConcurrencySlots._keys(plan.concurrency_key)
    waiting = queued_event(plan, reason).model_dump_json()
    return slot_keys, [plan.concurrency_key, plan.max_running or 1, waiting, reason]


class ConcurrencySlots:
    """The slots and lines of concurrency keys in Redis."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._release = client.register_script(source("release_slot"))
        self._claim = client.register_script(source("claim_slot"))

    def release(self, execution_id: str) -> list[str]:
        """Give back the slot of an execution that ended (or take it out of its line); the
        executions this admitted, to dispatch. None for one without a concurrency key."""
        key = self.client.hget(keys.meta(execution_id), "concurrency_key")
        if not key:
            return []
        return self._run(_text(key), execution_id)

    def claim(self, execution_id: str) -> bool:
        """A slot for an execution that runs again (a retry): True when it holds one (send
        it), False when it waits at the end of its key's line (a freed slot sends it). True
        for one without a concurrency key."""
        fields = self.client.hmget(keys.meta(execution_id), ["concurrency_key", "max_running"])
        key, max_running = (_text(value) if value else None for value in fields)
        if key is None:
            return True
        reason = waiting_reason_for(key, int(max_running or 1))
        before, after = keys.meta_pattern()
        claimed = self._claim(
            keys=[*self._keys(key), keys.LIVE_EXECUTIONS],
            args=[key, execution_id, before, after, now_ms(), reason],
        )
        return bool(claimed)

    def sweep(self) -> list[str]:
        """Reclaim slots held by executions that are over or gone, in every key, and admit
        who is next; the executions admitted."""
        admitted: list[str] = []
        for key in sorted(_text(k) for k in self.client.smembers(keys.SLOT_KEYS)):
            admitted += self._run(key, "")
        return admitted

    def running(self, concurrency_key: str) -> list[str]:
        """The executions holding the key's slots, oldest first."""
        members = self.client.zrange(keys.slots_running(concurrency_key), 0, -1)
        return [_text(member) for member in members if isinstance(member, (bytes, str))]

    def waiting(self, concurrency_key: str) -> list[str]:
        """The executions in the key's line, first in line first."""
        members = self.client.lrange(keys.slots_waiting(concurrency_key), 0, -1)
        return [_text(member) for member in members]

    def position(self, concurrency_key: str, execution_id: str) -> int | None:
        """The execution's place in the key's line (1: next); None when not in it."""
        found = self.client.lpos(keys.slots_waiting(concurrency_key), execution_id)
        return None if found is None else int(str(found)) + 1

    def _run(self, key: str, ended: str) -> list[str]:
        before, after = keys.meta_pattern()
        admitted = self._release(
            keys=[*self._keys(key), keys.LIVE_EXECUTIONS],
            args=[key, ended, before, after, now_ms()],
        )
        return [_text(member) for member in admitted]

    @staticmethod
    def _keys(key: str) -> list[str]:
        return [keys.slots_running(key), keys.slots_waiting(key), keys.SLOT_KEYS]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
