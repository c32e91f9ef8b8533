"""Schedules in Redis, shared by every beat process, the API and the CLI.

Keys (beside storage/keys.py's, under their own prefix):
  conductor:schedules               set of schedule names
  conductor:schedule:<name>         hash: spec (the Schedule as JSON), paused ("1"/"0"),
                                    last_tick_s (the newest tick claimed), fires (a count)
  conductor:schedule-fires:<name>   list of the newest fired ticks, "<tick_s> <beat id>"
  conductor:beat:polled             hash: beat id -> when it last looked (epoch seconds)
  conductor:beat:leader             the leading beat's id, with a TTL it renews on every pass
One beat process leads at a time; the others stand by and take over when its lock lapses.
The leader sends a schedule's due ticks, then moves last_tick_s past them (a WATCH/MULTI
compare-and-set): a leader that dies in between leaves them to its successor, which sends
them again under the same idempotency keys, so each still makes one execution.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis

from conductor.model.schedule import Schedule
from storage.redis_client import TRANSPORT_ERRORS, redis_client

NAMES = "conductor:schedules"
POLLED = "conductor:beat:polled"
LEADER = "conductor:beat:leader"
FIRES_KEPT = 100
# What "Redis did not answer" looks like to callers above storage/.
UNREACHABLE = TRANSPORT_ERRORS

# Connections one process's store may hold (short commands; beat, CLI, API).
MAX_CONNECTIONS = 8


def schedule_key(name: str) -> str:
    """The hash of schedule `name`."""
    return f"conductor:schedule:{name}"


def fires_key(name: str) -> str:
    """The list of schedule `name`'s newest fired ticks."""
    return f"conductor:schedule-fires:{name}"


class ScheduleExists(ValueError):
    """A schedule of that name is already stored."""


class ScheduleNotFound(LookupError):
    """No schedule of that name."""


@dataclass(frozen=True)
class ScheduleState:
    """A stored schedule and where it stands."""

    schedule: Schedule
    paused: bool
    last_tick_s: float
    fires: int


class RedisSchedules:
    """The schedule store."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    @classmethod
    def connect(cls, url: str, master: str | None = None) -> RedisSchedules:
        """A store on its own client of `url` (storage/redis_client.py's policy)."""
        return cls(redis_client(url, master=master, max_connections=MAX_CONNECTIONS))

    def add(self, schedule: Schedule) -> None:
        """Store a new schedule; its first tick is the first one after its creation."""
        fields: Mapping[Any, Any] = {
            "spec": schedule.model_dump_json(),
            "paused": "0",
            "last_tick_s": str(schedule.created_ms / 1000),
            "fires": "0",
        }
        key = schedule_key(schedule.name)
        with self.client.pipeline() as pipe:
            pipe.watch(key)  # type: ignore[no-untyped-call]
            if pipe.exists(key):
                raise ScheduleExists(f"schedule {schedule.name!r} exists: remove it first")
            pipe.multi()
            pipe.hset(key, mapping=fields)
            pipe.sadd(NAMES, schedule.name)
            pipe.execute()

    def get(self, name: str) -> ScheduleState:
        """One schedule; ScheduleNotFound when there is none."""
        found = self._read(name)
        if found is None:
            raise ScheduleNotFound(f"no schedule {name!r}")
        return found

    def all(self) -> list[ScheduleState]:
        """Every schedule, by name."""
        names = sorted(_text(name) for name in self.client.smembers(NAMES))
        return [state for name in names if (state := self._read(name)) is not None]

    def remove(self, name: str) -> None:
        """Delete a schedule; ScheduleNotFound when there is none."""
        with self.client.pipeline() as pipe:
            pipe.delete(schedule_key(name), fires_key(name))
            pipe.srem(NAMES, name)
            deleted, _ = pipe.execute()
        if not deleted:
            raise ScheduleNotFound(f"no schedule {name!r}")

    def set_paused(self, name: str, paused: bool, now_s: float | None = None) -> ScheduleState:
        """Pause, or resume from now (ticks missed while paused are not fired)."""
        key = schedule_key(name)
        with self.client.pipeline() as pipe:
            pipe.watch(key)  # type: ignore[no-untyped-call]
            if not pipe.exists(key):
                raise ScheduleNotFound(f"no schedule {name!r}")
            pipe.multi()
            pipe.hset(key, "paused", "1" if paused else "0")
            if not paused:
                pipe.hset(key, "last_tick_s", str(time.time() if now_s is None else now_s))
            pipe.execute()
        return self.get(name)

    def claim(self, name: str, seen_tick_s: float, up_to_s: int) -> bool:
        """Move the schedule's last tick from `seen_tick_s` to `up_to_s`, unless another beat
        did first, the schedule was paused or removed: whether this caller moved it."""
        key = schedule_key(name)
        with self.client.pipeline() as pipe:
            try:
                pipe.watch(key)  # type: ignore[no-untyped-call]
                last, paused = pipe.hmget(key, ["last_tick_s", "paused"])
                if last is None or paused == b"1" or float(last) != seen_tick_s:
                    return False
                pipe.multi()
                pipe.hset(key, "last_tick_s", str(up_to_s))
                pipe.execute()
            except redis.WatchError:
                return False
        return True

    def record_fire(self, name: str, tick_s: int, beat_id: str) -> None:
        """Count a fired tick and keep it in the schedule's short log."""
        with self.client.pipeline(transaction=False) as pipe:
            pipe.hincrby(schedule_key(name), "fires", 1)
            pipe.lpush(fires_key(name), f"{tick_s} {beat_id}")
            pipe.ltrim(fires_key(name), 0, FIRES_KEPT - 1)
            pipe.execute()

    def fired(self, name: str) -> list[tuple[int, str]]:
        """The newest fired ticks, oldest first: (tick, beat id)."""
        raw = self.client.lrange(fires_key(name), 0, -1)
        entries = [_text(entry).split(" ", 1) for entry in raw]
        return [(int(tick), beat) for tick, beat in reversed(entries)]

    def lead(self, beat_id: str, ttl_ms: int) -> bool:
        """Take or renew the leader lock for `ttl_ms`: whether `beat_id` leads now."""
        with self.client.pipeline() as pipe:
            try:
                pipe.watch(LEADER)  # type: ignore[no-untyped-call]
                holder = pipe.get(LEADER)
                if holder is not None and _text(holder) != beat_id:
                    return False
                pipe.multi()
                pipe.set(LEADER, beat_id, px=ttl_ms)
                pipe.execute()
            except redis.WatchError:
                return False
        return True

    def leader(self) -> str | None:
        """The leading beat's id, if one leads."""
        holder = self.client.get(LEADER)
        return None if holder is None else _text(holder)

    def polled(self, beat_id: str, now_s: float) -> None:
        """A beat process looked at the schedules."""
        self.client.hset(POLLED, beat_id, str(now_s))

    def last_polls(self) -> dict[str, float]:
        """When each beat process last looked."""
        raw = self.client.hgetall(POLLED)
        return {_text(k): float(v) for k, v in raw.items()}

    def close(self) -> None:
        """Drop the connections."""
        self.client.close()

    def _read(self, name: str) -> ScheduleState | None:
        raw = self.client.hgetall(schedule_key(name))
        fields = {_text(k): _text(v) for k, v in raw.items()}
        if "spec" not in fields:
            return None
        return ScheduleState(
            schedule=Schedule.model_validate_json(fields["spec"]),
            paused=fields.get("paused") == "1",
            last_tick_s=float(fields.get("last_tick_s", "0")),
            fires=int(fields.get("fires", "0")),
        )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
