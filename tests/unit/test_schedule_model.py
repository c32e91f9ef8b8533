"""Cron expressions and which ticks are due: the arithmetic every beat process shares."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from conductor.model.cron import Cron, CronError
from conductor.model.schedule import CATCH_UP_S, Schedule, parse_every, tick_text

BERLIN = ZoneInfo("Europe/Berlin")


def schedule(**fields: object) -> Schedule:
    return Schedule.model_validate({"name": "s", "blueprint_id": "b", "created_ms": 0, **fields})


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("5m", 300), ("1h", 3600), ("2d", 172800), ("7", 7)]
)
def test_every_parses_units(text: str, seconds: int) -> None:
    assert parse_every(text) == seconds


@pytest.mark.parametrize("text", ["0s", "soon", "-1s", "1.5s", "5 weeks"])
def test_a_bad_interval_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not an interval"):
        parse_every(text)


def test_cron_fields_steps_ranges_lists_names() -> None:
    cron = Cron.parse("*/15 9-17 * jan,jul mon-fri")
    assert cron.minutes == {0, 15, 30, 45}
    assert cron.hours == set(range(9, 18))
    assert cron.months == {1, 7}
    assert cron.weekdays == {1, 2, 3, 4, 5}
    assert cron.matches(dt.datetime(2026, 1, 5, 9, 30))  # a Monday
    assert not cron.matches(dt.datetime(2026, 1, 4, 9, 30))  # a Sunday
    assert Cron.parse("0 0 * * 7").weekdays == {0}  # Sunday is 0 or 7


def test_cron_day_fields_match_either_when_both_are_restricted() -> None:
    cron = Cron.parse("0 0 13 * fri")  # the 13th, and every Friday (crontab(5))
    assert cron.matches(dt.datetime(2026, 1, 13))  # a Tuesday
    assert cron.matches(dt.datetime(2026, 1, 16))  # a Friday
    assert not cron.matches(dt.datetime(2026, 1, 14))


@pytest.mark.parametrize(
    ("text", "names"),
    [("* * * *", "has 4 fields"), ("61 * * * *", "minute"), ("* 24 * * *", "hour"),
     ("* * 0 * *", "day of month"), ("* * * foo *", "month"), ("*/0 * * * *", "step"),
     ("\u00b2 * * * *", "minute")],
)  # fmt: skip
def test_a_bad_cron_names_the_field(text: str, names: str) -> None:
    with pytest.raises(CronError, match=names):
        Cron.parse(text)


def test_every_ticks_are_multiples_of_the_interval() -> None:
    every = schedule(every_s=10)
    assert every.due_ticks(1000.0, 1035.5) == [1010, 1020, 1030]
    assert every.due_ticks(1030.0, 1035.5) == []  # the last tick was claimed already
    assert every.next_tick(1035.5) == 1040


def test_missed_ticks_older_than_the_catch_up_window_are_skipped() -> None:
    every = schedule(every_s=1)
    ticks = every.due_ticks(0.0, 10_000.0)
    assert ticks == list(range(10_000 - CATCH_UP_S + 1, 10_001))


def test_cron_ticks_follow_the_time_zone() -> None:
    nine = schedule(cron="0 9 * * *", timezone="Europe/Berlin")
    start = dt.datetime(2026, 7, 1, 8, 0, tzinfo=BERLIN).timestamp()
    tick = nine.next_tick(start)
    assert tick is not None
    assert tick_text(tick) == "2026-07-01T07:00:00+00:00"  # summer time: UTC+2
    assert nine.due_ticks(tick - 30, tick + 30) == [tick]
    assert nine.due_ticks(tick - 90, tick - 30) == []


@pytest.mark.parametrize(
    ("fields", "message"),
    [({}, "exactly one of every and cron"), ({"every_s": 5, "cron": "* * * * *"}, "exactly one"),
     ({"cron": "* * * * *", "timezone": "Mars/Base"}, "unknown time zone"),
     ({"every_s": 5, "timezone": "Europe/Berlin"}, "cron schedules only"),
     ({"every_s": 5, "name": "no spaces"}, "name")],
)  # fmt: skip
def test_an_invalid_schedule_is_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        schedule(**fields)


def test_a_day_field_starting_with_a_star_is_unrestricted() -> None:
    cron = Cron.parse("0 0 */2 * mon")  # odd days that are Mondays (crontab(5): starts with *)
    assert cron.matches(dt.datetime(2026, 1, 5))  # the 5th, a Monday
    assert not cron.matches(dt.datetime(2026, 1, 12))  # a Monday, an even day
    assert not cron.matches(dt.datetime(2026, 1, 7))  # an odd day, a Wednesday


def day_of_fires(fields: dict[str, object], day: dt.date) -> list[str]:
    """The ticks a beat polling every 30 s fires from 18:00 UTC the day before `day`, 24 h."""
    rule = schedule(timezone="Europe/Berlin", **fields)
    start = dt.datetime.combine(day, dt.time(), dt.UTC).timestamp() - 6 * 3600
    fired: list[int] = []
    for now in range(int(start), int(start) + 24 * 3600, 30):
        fired += rule.due_ticks(max(now - 30, fired[-1] if fired else 0), now)
    return [tick_text(tick) for tick in fired]


def test_a_fixed_time_skipped_by_summer_time_fires_right_after_the_jump() -> None:
    # 2027-03-28: Berlin clocks go 02:00 -> 03:00; 02:30 never happens on the wall.
    assert day_of_fires({"cron": "30 2 * * *"}, dt.date(2027, 3, 28)) == [
        "2027-03-28T01:00:00+00:00"  # 03:00 CEST, the first minute after the jump
    ]
    assert day_of_fires({"cron": "*/30 2 * * *"}, dt.date(2027, 3, 28)) == []  # wildcard


def test_a_fixed_time_repeated_by_winter_time_fires_once() -> None:
    # 2026-10-25: Berlin clocks go 03:00 -> 02:00; 02:30 happens twice on the wall.
    assert day_of_fires({"cron": "30 2 * * *"}, dt.date(2026, 10, 25)) == [
        "2026-10-25T00:30:00+00:00"  # 02:30 CEST, not 02:30 CET as well
    ]
    assert len(day_of_fires({"cron": "*/30 2 * * *"}, dt.date(2026, 10, 25))) == 4  # wildcard


def test_next_tick_reaches_a_leap_day_and_an_impossible_date_is_found() -> None:
    leap = schedule(cron="0 0 29 2 *", timezone="UTC")
    start = dt.datetime(2026, 12, 3, tzinfo=dt.UTC).timestamp()
    assert tick_text(leap.next_tick(start) or 0) == "2028-02-29T00:00:00+00:00"
    assert not Cron.parse("0 0 31 2 *").possible()
    assert not Cron.parse("0 0 31 apr,jun *").possible()
    assert Cron.parse("0 0 31 2 mon").possible()  # every Monday in February
    assert Cron.parse("0 0 30 1-2 *").possible()
