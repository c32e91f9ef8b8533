"""`conductor run` and `conductor validate`: a Blueprint file, checked, then run."""

from __future__ import annotations

import json
import sys
from functools import partial
from pathlib import Path
from typing import Any

import click

from conductor.embedded import embedded
from conductor.exit_codes import EXIT_INVALID
from conductor.model.admission import (
    DEFAULT_PRIORITY,
    MAX_PRIORITY,
    MIN_PRIORITY,
    Admission,
    InvalidAdmission,
)
from conductor.model.loader import parse_json_value
from conductor.model.problems import InvalidBlueprint
from conductor.model.settings import Settings


@click.command()
@click.argument("blueprint", type=click.Path(path_type=Path))
@click.option(
    "--input",
    "input_pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="An execution input; VALUE is parsed as JSON when it can be (repeatable).",
)
@click.option("--inputs", "inputs_json", metavar="JSON", help="Execution inputs as a JSON object.")
@click.option("--json", "as_json", is_flag=True, help="Print only the result object, as JSON.")
@click.option("--detach", is_flag=True, help="Submit, print the execution id, do not wait.")
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Stop waiting after this many seconds; the execution then fails with TIMEOUT.",
)
@click.option(
    "--priority",
    type=click.IntRange(MIN_PRIORITY, MAX_PRIORITY),
    default=DEFAULT_PRIORITY,
    show_default=True,
    help="0-9, 9 most urgent: its nodes overtake less urgent ones waiting in the queue.",
)
@click.option(
    "--concurrency-key",
    metavar="KEY",
    default=None,
    help="Run at most max_running executions with KEY at once; the rest wait in line.",
)
@click.option(
    "--break",
    "breakpoints",
    multiple=True,
    metavar="NODE",
    help="Pause before NODE (key, id, or loop-body key; repeatable) and ask what to do: "
    "step, continue, inspect, quit (docs/debugging.md).",
)
def run(
    *,
    blueprint: Path,
    input_pairs: tuple[str, ...],
    inputs_json: str | None,
    as_json: bool,
    detach: bool,
    timeout_s: float | None,
    priority: int,
    concurrency_key: str | None,
    breakpoints: tuple[str, ...],
) -> None:
    """Run a Blueprint file and print its result.

    Exit 0 succeeded, 1 the execution failed, 2 the Blueprint is invalid, 3 Redis or the
    history store is not reachable, 130 interrupted. Unknown parameters are warnings
    (CONDUCTOR_STRICT_PARAMETERS=1: errors).
    """
    settings = Settings.from_env()
    inputs = parse_inputs(input_pairs, inputs_json)
    try:
        admission = Admission(priority=priority, concurrency_key=concurrency_key)
    except InvalidAdmission as exc:
        raise click.BadParameter(str(exc), param_hint="--concurrency-key") from None
    if detach and settings.redis_url is None:
        raise click.UsageError("--detach needs CONDUCTOR_REDIS_URL (the embedded Redis stops)")
    submit = partial(
        _submit, blueprint, settings=settings, inputs=inputs, detach=detach,
        timeout_s=timeout_s, as_json=as_json, admission=admission, breakpoints=breakpoints,
    )  # fmt: skip
    if settings.redis_url is None:
        # Started first: the private worker boots (about a second) while this process imports
        # the nodes and checks the Blueprint.
        with embedded(settings) as private:
            result = submit(private)
    else:
        result = submit(settings)
    from conductor.runner import end_command  # noqa: PLC0415  (loaded by the submit already)

    end_command(result, detach=detach, as_json=as_json)


def _submit(
    path: Path,
    target: Settings,
    *,
    settings: Settings,
    inputs: dict[str, Any],
    detach: bool,
    timeout_s: float | None,
    as_json: bool,
    admission: Admission,
    breakpoints: tuple[str, ...],
) -> dict[str, Any]:
    """Check the Blueprint in `path` (exit 2 when invalid), then run it on `target`'s Redis."""
    from conductor import runner  # noqa: PLC0415  (heavy: imported while the worker boots)
    from conductor.debugger import Detached  # noqa: PLC0415
    from nodes.registry import default_registry  # noqa: PLC0415

    registry = default_registry()
    model = runner.load_valid(path, registry, strict=settings.strict_parameters)
    show_progress = not as_json and sys.stderr.isatty()
    submission = runner.Submission(
        model,
        inputs,
        registry,
        detach,
        timeout_s,
        show_progress,
        as_json,
        breakpoints=breakpoints,
        admission=admission,
        private_redis=target is not settings,
    )
    try:
        result = submission.run(target)
    except InvalidBlueprint as exc:  # --break naming no node; what `blueprint` nodes reference
        runner.print_problems(path, exc)
        sys.exit(EXIT_INVALID)
    except Detached as detached:
        result = _left_paused(str(detached), target, settings)
    if target is not settings:
        runner.record_history(target)  # the embedded stack: history outlives its Redis
    return result


def _left_paused(execution_id: str, target: Settings, settings: Settings) -> dict[str, Any]:
    """The debugger quit: the execution stays paused on the workers' Redis; the embedded
    one stops with this run, so there it is cancelled and its result returned."""
    from conductor.control import Control  # noqa: PLC0415
    from conductor.services import Services  # noqa: PLC0415
    from conductor.waiting import wait_for_result  # noqa: PLC0415

    services = Services.from_settings(target)
    if target is settings:
        click.echo(
            f"left {execution_id} paused: conductor step|resume|cancel {execution_id}", err=True
        )
        sys.exit(0)
    Control(services.dispatcher).cancel(execution_id)
    return wait_for_result(services.backend.event_source(), services.stores, execution_id, 10)


def parse_inputs(pairs: tuple[str, ...], inputs_json: str | None) -> dict[str, Any]:
    """`--inputs` JSON first, then each `--input k=v` (v as JSON when it parses, else text)."""
    inputs: dict[str, Any] = {}
    if inputs_json:
        try:
            parsed = parse_json_value(inputs_json)
        except json.JSONDecodeError as exc:
            raise click.BadParameter(f"not JSON: {exc}", param_hint="--inputs") from None
        except InvalidBlueprint as exc:  # NaN, infinities, over-long numbers, deep nesting
            raise click.BadParameter(str(exc.problems[0]), param_hint="--inputs") from None
        if not isinstance(parsed, dict):
            raise click.BadParameter("must be a JSON object", param_hint="--inputs")
        inputs.update(parsed)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--input")
        inputs[key] = _value(value)
    return inputs


def _value(text: str) -> Any:
    """JSON when `text` is JSON that Conductor carries; text otherwise (`NaN` stays "NaN")."""
    try:
        return parse_json_value(text)
    except (json.JSONDecodeError, InvalidBlueprint):
        return text


@click.command()
@click.argument("blueprint", type=click.Path(path_type=Path))
@click.option(
    "--strict",
    is_flag=True,
    help="Unknown node fields and parameters are errors (default: warnings). "
    "CONDUCTOR_STRICT_PARAMETERS=1 does the same.",
)
def validate(blueprint: Path, strict: bool) -> None:
    """Check a Blueprint file: exit 0 (warnings on stderr), or 2 listing every problem with
    its path."""
    from conductor.runner import check_references, load_valid  # noqa: PLC0415  (heavy)
    from nodes.registry import default_registry  # noqa: PLC0415

    settings = Settings.from_env()
    model = load_valid(blueprint, default_registry(), strict=strict or settings.strict_parameters)
    check_references(blueprint, model, settings)
    click.echo(f"{blueprint}: valid")
