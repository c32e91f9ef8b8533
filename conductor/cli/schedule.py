"""`conductor schedule add|list|rm|pause|resume`: the schedules `conductor beat` fires."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import click

from conductor.cli.shared_redis import redis_url, shared_settings
from conductor.exit_codes import EXIT_FAILED, EXIT_INVALID
from conductor.model.settings import Settings
from conductor.schedules import InvalidSchedule, new_schedule, parse_inputs, schedule_view
from storage.blueprints import open_blueprint_store
from storage.schedules import RedisSchedules, ScheduleExists, ScheduleNotFound

# The API body's field names, as this command's options.
OPTION_OF = {
    "name": "NAME", "blueprint_id": "--blueprint", "every": "--every", "cron": "--cron",
    "timezone": "--timezone", "inputs": "--inputs",
}  # fmt: skip
# No beat has looked at the schedules for this long: `schedule list` warns.
BEAT_STALE_S = 10


@click.group()
def schedule() -> None:
    """Run stored Blueprints on an interval or a cron expression (`conductor beat` fires)."""


@contextmanager
def _store() -> Iterator[RedisSchedules]:
    settings = shared_settings()
    store = RedisSchedules.connect(redis_url(settings), settings.redis_master)
    try:
        yield store
    finally:
        store.close()


@schedule.command()
@click.argument("name")
@click.option("--blueprint", "blueprint_id", required=True, help="A stored Blueprint's id.")
@click.option("--every", help="An interval: 30s, 5m, 1h, 1d.")
@click.option("--cron", help='A cron expression, e.g. "*/5 * * * *".')
@click.option("--timezone", help="The cron expression's IANA time zone (default UTC).")
@click.option("--inputs", "inputs_text", help="The executions' inputs, a JSON object.")
def add(  # noqa: PLR0917  (one parameter per option, as click passes them)
    name: str,
    blueprint_id: str,
    every: str | None,
    cron: str | None,
    timezone: str | None,
    inputs_text: str | None,
) -> None:
    """Add schedule NAME for a stored Blueprint."""
    try:
        created = new_schedule(
            open_blueprint_store(Settings.from_env().blueprints_dir),
            name=name, blueprint_id=blueprint_id, every=every, cron=cron,
            timezone=timezone, inputs=parse_inputs(inputs_text),
        )  # fmt: skip
    except InvalidSchedule as exc:
        for problem in exc.problems:
            click.echo(f"error: {OPTION_OF[problem.field]}: {problem.message}", err=True)
        sys.exit(EXIT_INVALID)
    with _store() as store:
        try:
            store.add(created)
        except ScheduleExists as exc:
            click.echo(f"error: NAME: {exc}", err=True)
            sys.exit(EXIT_INVALID)
    click.echo(f"schedule {name}: {created.describe()}, Blueprint {blueprint_id}")


@schedule.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="A JSON list of schedules.")
def list_schedules(as_json: bool) -> None:
    """Every schedule, with its next tick."""
    with _store() as store:
        states, polls = store.all(), store.last_polls()
    views = [schedule_view(state, time.time()) for state in states]
    if as_json:
        click.echo(json.dumps(views))
        return
    for view, state in zip(views, states, strict=True):
        status = "paused" if view["paused"] else f"next {view['next_tick']}"
        click.echo(
            f"{view['name']}  {state.schedule.describe()}  {view['blueprint_id']}  {status}  "
            f"fired {view['fires']}"
        )
    if states and max(polls.values(), default=0) < time.time() - BEAT_STALE_S:
        click.echo("warning: no `conductor beat` is running: nothing fires", err=True)


@schedule.command()
@click.argument("name")
def rm(name: str) -> None:
    """Remove schedule NAME (executions it started are kept)."""
    with _store() as store:
        try:
            store.remove(name)
        except ScheduleNotFound as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_FAILED)
    click.echo(f"removed schedule {name}")


def _pause_command(paused: bool) -> click.Command:
    verb = "pause" if paused else "resume"
    help_text = (
        "Pause schedule NAME: no tick fires until it is resumed."
        if paused
        else "Resume schedule NAME from now (ticks missed while paused do not fire)."
    )

    @click.command(name=verb, help=help_text)
    @click.argument("name")
    def command(name: str) -> None:
        with _store() as store:
            try:
                store.set_paused(name, paused)
            except ScheduleNotFound as exc:
                click.echo(f"error: {exc}", err=True)
                sys.exit(EXIT_FAILED)
        click.echo(f"schedule {name}: {'paused' if paused else 'running'}")

    return command


schedule.add_command(_pause_command(True))
schedule.add_command(_pause_command(False))
