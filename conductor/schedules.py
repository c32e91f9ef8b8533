"""Schedules: checking a new one against the Blueprint store, and firing due ticks (what
`conductor beat` does on each pass) by sending `conductor.submit` with an idempotency key of
the schedule's name and tick."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from celery import Celery
from pydantic import ValidationError

from conductor.model.cron import Cron
from conductor.model.schedule import Schedule, parse_every, tick_text
from conductor.submit_task import CELERY_DEFAULT_QUEUE, SUBMIT_TASK
from storage.blueprints import BlueprintNotFound, BlueprintStore, BlueprintStoreError
from storage.schedules import RedisSchedules, ScheduleState

log = logging.getLogger(__name__)

# How often a beat process looks at the schedules: well under the shortest interval (1 s).
POLL_S = 0.2
# The leader's lock lapses this long after its last pass: a standby beat takes over then.
LEADER_TTL_MS = 3000


@dataclass(frozen=True)
class FieldProblem:
    """What is wrong with one field of a schedule request."""

    field: str  # the API body's name: name, blueprint_id, every, cron, timezone, inputs
    message: str


class InvalidSchedule(ValueError):
    """A schedule request with problems; each names its field."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))
        self.problems = problems


def new_schedule(
    blueprints: BlueprintStore,
    *,
    name: str,
    blueprint_id: str,
    every: str | int | None = None,
    cron: str | None = None,
    timezone: str | None = None,
    inputs: Any = None,
    now_s: float | None = None,
) -> Schedule:
    """A checked schedule: a stored Blueprint, exactly one of every and cron, a cron that
    parses, a known time zone, inputs that are a JSON object."""
    problems: list[FieldProblem] = []
    every_s = _every_seconds(every, problems)
    if (every is None) == (cron is None):
        problems.append(FieldProblem("every", "give exactly one of every and cron"))
    if inputs is not None and not isinstance(inputs, dict):
        problems.append(FieldProblem("inputs", "must be a JSON object"))
    _check_blueprint(blueprints, blueprint_id, problems)
    fields = {
        "name": name, "blueprint_id": blueprint_id, "every_s": every_s, "cron": cron,
        "timezone": timezone or "UTC", "inputs": inputs if isinstance(inputs, dict) else {},
        "created_ms": int((time.time() if now_s is None else now_s) * 1000),
    }  # fmt: skip
    try:
        schedule = Schedule.model_validate(fields)
    except ValidationError as exc:
        found = [_problem(err) for err in exc.errors()]
        # "exactly one of every and cron" adds nothing when `every` itself was refused.
        if any(p.field == "every" for p in problems):
            found = [p for p in found if p.field != "every"]
        problems += [p for p in found if p not in problems]
        raise InvalidSchedule(problems) from None
    if schedule.cron is not None and not Cron.parse(schedule.cron).possible():
        # Refused when added, not in the model: a stored schedule must always load.
        problems.append(FieldProblem("cron", "matches no date (e.g. 31 February): never fires"))
    if problems:
        raise InvalidSchedule(problems)
    return schedule


def _every_seconds(every: str | int | None, problems: list[FieldProblem]) -> int | None:
    if every is None:
        return None
    try:
        return parse_every(every)
    except ValueError as exc:
        problems.append(FieldProblem("every", str(exc)))
        return None


def _check_blueprint(
    blueprints: BlueprintStore, blueprint_id: str, problems: list[FieldProblem]
) -> None:
    try:
        blueprints.get(blueprint_id)
    except BlueprintNotFound:
        problems.append(FieldProblem("blueprint_id", f"no stored Blueprint {blueprint_id!r}"))
    except BlueprintStoreError as exc:
        problems.append(FieldProblem("blueprint_id", str(exc)))


_FIELD_NAMES = {"every_s": "every"}


def _problem(err: Any) -> FieldProblem:
    loc = err["loc"]
    field = _FIELD_NAMES.get(str(loc[0]), str(loc[0])) if loc else "every"
    message = str(err["msg"]).removeprefix("Value error, ")
    if field == "name":
        message = "letters, digits, '.', '_' and '-', starting with a letter or digit (<= 100)"
    return FieldProblem(field, message)


def execution_inputs(schedule: Schedule, tick_s: int) -> dict[str, Any]:
    """What a fire submits: the schedule's inputs plus `schedule` and `tick`."""
    return {**schedule.inputs, "schedule": schedule.name, "tick": tick_text(tick_s)}


def idempotency_key(name: str, tick_s: int) -> str:
    """One execution per schedule and tick, however often the tick is sent."""
    return f"schedule:{name}:{tick_text(tick_s)}"


class ScheduleFirer:
    """One beat process's view: on each pass, if it leads, it sends one `conductor.submit`
    per due tick of every running schedule, then moves the schedule past those ticks."""

    def __init__(self, app: Celery, store: RedisSchedules, beat_id: str) -> None:
        self.app = app
        self.store = store
        self.beat_id = beat_id

    def tick(self, now_s: float | None = None) -> float:
        """One pass; the seconds until the next."""
        now_s = time.time() if now_s is None else now_s
        self.store.polled(self.beat_id, now_s)
        if not self.store.lead(self.beat_id, LEADER_TTL_MS):
            return POLL_S  # standing by
        for state in self.store.all():
            if not state.paused:
                self._fire_due(state, now_s)
        return POLL_S

    def _fire_due(self, state: ScheduleState, now_s: float) -> None:
        schedule = state.schedule
        due = schedule.due_ticks(state.last_tick_s, now_s)
        for tick_s in due:
            self.app.send_task(
                SUBMIT_TASK,
                kwargs={
                    "blueprint_id": schedule.blueprint_id,
                    "inputs": execution_inputs(schedule, tick_s),
                    "idempotency_key": idempotency_key(schedule.name, tick_s),
                },
                queue=CELERY_DEFAULT_QUEUE,
                # Nobody reads it: a result would subscribe beat to one channel per fire, for
                # ever, and a Redis outage would end beat after the backend's retries.
                ignore_result=True,
            )
        # Sent, then claimed: a beat that dies in between leaves the ticks to the next leader,
        # whose repeat finds the same executions by their keys.
        if due and self.store.claim(schedule.name, state.last_tick_s, due[-1]):
            for tick_s in due:
                self.store.record_fire(schedule.name, tick_s, self.beat_id)
                log.info("schedule %s fired tick %s", schedule.name, tick_text(tick_s))


def schedule_view(state: ScheduleState, now_s: float | None = None) -> dict[str, Any]:
    """A stored schedule as the API and `schedule list --json` show it."""
    schedule = state.schedule
    now_s = time.time() if now_s is None else now_s  # ticks up to now fire on the next pass
    next_tick = None if state.paused else schedule.next_tick(max(state.last_tick_s, now_s))
    return {
        "name": schedule.name,
        "blueprint_id": schedule.blueprint_id,
        "every_s": schedule.every_s,
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "inputs": schedule.inputs,
        "paused": state.paused,
        "fires": state.fires,
        "last_tick": tick_text(state.last_tick_s) if state.fires else None,
        "next_tick": tick_text(next_tick) if next_tick is not None else None,
        "created_ms": schedule.created_ms,
    }


def parse_inputs(text: str | None) -> Any:
    """`--inputs` as JSON; an InvalidSchedule naming `inputs` when it does not parse."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidSchedule([FieldProblem("inputs", f"not JSON: {exc}")]) from None
