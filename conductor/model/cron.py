"""Five-field cron expressions (minute hour day-of-month month day-of-week), as crontab(5)
reads them: `*`, lists, ranges, steps, month and weekday names; Sunday is 0 or 7."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# name, lowest, highest, names (their index + lowest is the value)
_FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _WEEKDAYS),
)


class CronError(ValueError):
    """A cron expression that does not parse; says which field and why."""


@dataclass(frozen=True)
class Cron:
    """A parsed cron expression; `matches` a minute of wall-clock time."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool  # day of month starts with `*` (`*`, `*/2`)
    any_weekday: bool  # day of week starts with `*`
    fixed_time: bool = False  # neither minute nor hour starts with `*` (`30 2 * * *`)

    @classmethod
    def parse(cls, text: str) -> Cron:
        """Parse `text`; a CronError names the field that is wrong."""
        parts = text.split()
        if len(parts) != len(_FIELDS):
            raise CronError(
                f"{text!r} has {len(parts)} fields; a cron expression has 5: "
                "minute hour day-of-month month day-of-week (e.g. '*/5 * * * *')"
            )
        values = [_field(part, *spec) for part, spec in zip(parts, _FIELDS, strict=True)]
        weekdays = frozenset(day % 7 for day in values[4])
        minutes, hours, days, months, _ = values
        star = [part.startswith("*") for part in parts]
        return cls(
            minutes, hours, days, months, weekdays,
            any_day=star[2], any_weekday=star[4], fixed_time=not (star[0] or star[1]),
        )  # fmt: skip

    def matches(self, when: dt.datetime) -> bool:
        """Whether the minute of `when` (wall-clock time in its zone) is one of the times."""
        if when.minute not in self.minutes or when.hour not in self.hours:
            return False
        return self.matches_date(when.date())

    def matches_date(self, date: dt.date) -> bool:
        """Whether some time of `date` may match (month and the day fields)."""
        if date.month not in self.months:
            return False
        day = date.day in self.days
        weekday = date.isoweekday() % 7 in self.weekdays
        # crontab(5): when both day fields are restricted (neither starts with `*`), either
        # one matching is enough.
        if self.any_day or self.any_weekday:
            return day and weekday
        return day or weekday

    def fires_at(self, tick_s: int, zone: dt.tzinfo) -> bool:
        """Whether the minute starting at epoch second `tick_s` fires in `zone`, with
        cron(8)'s daylight-saving rules for fixed-time expressions (minute and hour without
        `*`): a wall-clock time skipped when clocks go forward fires at the first minute after
        the jump; one repeated when they go back fires once, the first time."""
        local = dt.datetime.fromtimestamp(tick_s, zone)
        if self.matches(local):
            return not (self.fixed_time and local.fold == 1)
        if not self.fixed_time:
            return False
        before = dt.datetime.fromtimestamp(tick_s - 60, zone).replace(tzinfo=None)
        skipped = int((local.replace(tzinfo=None) - before).total_seconds()) // 60 - 1
        return any(self.matches(before + dt.timedelta(minutes=k)) for k in range(1, skipped + 1))

    def possible(self) -> bool:
        """Whether some date matches (`0 0 31 2 *` never does)."""
        if not (self.any_day or self.any_weekday):
            return True  # the day of week alone matches some day of every month
        longest = {2: 29, 4: 30, 6: 30, 9: 30, 11: 30}
        return any(day <= longest.get(month, 31) for month in self.months for day in self.days)


def _field(text: str, name: str, low: int, high: int, names: tuple[str, ...]) -> frozenset[int]:
    found: set[int] = set()
    for item in text.split(","):
        base, _, step_text = item.partition("/")
        step = _number(step_text, name, names, low) if step_text else 1
        if step < 1:
            raise CronError(f"{name}: step {step_text!r} must be at least 1")
        if base == "*":
            start, end = low, high
        elif "-" in base:
            first, _, last = base.partition("-")
            start, end = _number(first, name, names, low), _number(last, name, names, low)
        else:
            start = _number(base, name, names, low)
            end = high if step_text else start
        if not low <= start <= end <= high:
            raise CronError(f"{name}: {item!r} is outside {low}-{high}")
        found.update(range(start, end + 1, step))
    return frozenset(found)


def _number(text: str, name: str, names: tuple[str, ...], low: int) -> int:
    if text.isascii() and text.isdigit():  # not "²", which isdigit() but int() refuses
        return int(text)
    if text.lower() in names:
        return names.index(text.lower()) + low
    raise CronError(
        f"{name}: {text!r} is not a number" + (f" or a name ({', '.join(names)})" if names else "")
    )
