"""A schedule: run a stored Blueprint every N seconds or on a cron expression; which ticks
are due between two instants."""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from conductor.model.cron import Cron, CronError

SCHEDULE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
_EVERY = re.compile(r"^\s*(\d+)\s*(s|m|h|d)?\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# A tick missed by less than this (beat restarting, another beat taking over) still fires,
# late; older ones are skipped.
CATCH_UP_S = 60
MINUTE_S = 60
NEXT_TICK_HORIZON_S = 8 * 366 * 86400


def parse_every(text: str | int) -> int:
    """`30s`, `5m`, `1h`, `2d` or a number of seconds, as seconds (at least 1)."""
    match = _EVERY.match(str(text))
    if not match or int(match.group(1)) < 1:
        raise ValueError(f"{text!r} is not an interval: write e.g. 30s, 5m, 1h, 1d (at least 1s)")
    return int(match.group(1)) * _UNIT_S[match.group(2) or "s"]


class Schedule(BaseModel):
    """What `conductor schedule add` stores: a stored Blueprint and when to run it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=SCHEDULE_NAME)
    blueprint_id: str = Field(min_length=1)
    every_s: int | None = Field(default=None, ge=1)
    cron: str | None = None
    timezone: str = "UTC"
    inputs: dict[str, Any] = Field(default_factory=dict)
    created_ms: int = Field(ge=0)

    @field_validator("cron")
    @classmethod
    def _cron_parses(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                Cron.parse(value)
            except CronError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}: use an IANA name such as Europe/Berlin"
            ) from None
        return value

    @model_validator(mode="after")
    def _one_rule(self) -> Schedule:
        if (self.every_s is None) == (self.cron is None):
            raise ValueError("give exactly one of every and cron")
        if self.every_s is not None and self.timezone != "UTC":
            raise ValueError("timezone applies to cron schedules only")
        return self

    def describe(self) -> str:
        """`every 30s` or `cron */5 * * * * (Europe/Berlin)`."""
        if self.every_s is not None:
            return f"every {self.every_s}s"
        return f"cron {self.cron} ({self.timezone})"

    def due_ticks(self, after_s: float, now_s: float) -> list[int]:
        """Ticks (epoch seconds) in (after_s, now_s], oldest first, none older than the
        catch-up window. `every` ticks are multiples of the interval since the epoch, so every
        beat process computes the same ones."""
        after_s = max(after_s, now_s - CATCH_UP_S)
        step = self.every_s or MINUTE_S
        first = math.floor(after_s / step) * step + step
        candidates = range(first, math.floor(now_s) + 1, step)
        if self.cron is None:
            return list(candidates)
        cron, zone = Cron.parse(self.cron), ZoneInfo(self.timezone)
        return [t for t in candidates if cron.fires_at(t, zone)]

    def next_tick(self, after_s: float) -> int | None:
        """The first tick after `after_s` (within 8 years: 29 February), for display."""
        step = self.every_s or MINUTE_S
        tick = math.floor(after_s / step) * step + step
        if self.cron is None:
            return tick
        cron, zone = Cron.parse(self.cron), ZoneInfo(self.timezone)
        end = tick + NEXT_TICK_HORIZON_S
        while tick < end:
            date = dt.datetime.fromtimestamp(tick, zone).date()
            if not cron.matches_date(date):  # on to the next local midnight
                midnight = dt.datetime.combine(date + dt.timedelta(days=1), dt.time(), zone)
                tick = max(tick + MINUTE_S, math.floor(midnight.timestamp() / 60) * 60)
                continue
            if cron.fires_at(tick, zone):
                return tick
            tick += MINUTE_S
        return None


def tick_text(tick_s: float) -> str:
    """A tick as the execution records it: ISO 8601 in UTC, to the second."""
    return dt.datetime.fromtimestamp(tick_s, dt.UTC).isoformat(timespec="seconds")
