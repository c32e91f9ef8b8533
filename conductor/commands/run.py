"""`conductor run` and `conductor validate`: a Blueprint file, checked, then run."""

from __future__ import annotations

import json
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import redis
from rich.console import Console

from conductor.blueprint import Blueprint
from conductor.dispatch import Dispatcher
from conductor.embedded import embedded
from conductor.exit_codes import EXIT_FAILED, EXIT_INVALID
from conductor.loader import load_blueprint_file
from conductor.problems import InvalidBlueprint
from conductor.progress import ProgressView
from conductor.recorder import Recorder
from conductor.settings import Settings
from conductor.validation import ensure_valid
from conductor.waiting import ExecutionFollower
from nodes.registry import NodeRegistry, default_registry
from storage.history import open_history
from workers.app import create_app
from workers.tasks import make_stores


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
    type=float,
    default=None,
    help="Stop waiting after this many seconds; the execution then fails with TIMEOUT.",
)
def run(
    *,
    blueprint: Path,
    input_pairs: tuple[str, ...],
    inputs_json: str | None,
    as_json: bool,
    detach: bool,
    timeout_s: float | None,
) -> None:
    """Run a Blueprint file and print its result.

    Exit 0 succeeded, 1 the execution failed, 2 the Blueprint is invalid, 3 Redis or the
    history store is not reachable, 130 interrupted. Unknown parameters are warnings
    (CONDUCTOR_STRICT_PARAMETERS=1: errors).
    """
    settings = Settings.from_env()
    inputs = parse_inputs(input_pairs, inputs_json)
    if detach and settings.redis_url is None:
        raise click.UsageError("--detach needs CONDUCTOR_REDIS_URL (the embedded Redis stops)")
    registry = default_registry()
    model = _load_valid(blueprint, registry, strict=settings.strict_parameters)
    show_progress = not as_json and sys.stderr.isatty()
    submission = Submission(model, inputs, registry, detach, timeout_s, show_progress, as_json)
    if settings.redis_url is None:
        with embedded(settings) as private:
            result = submission.run(private)
            record_history(private)
    else:
        result = submission.run(settings)
    if detach:
        click.echo(json.dumps(result) if as_json else result["id"])
        return
    _print_result(result, as_json)
    sys.exit(0 if result["success"] else EXIT_FAILED)


def _load_valid(path: Path, registry: NodeRegistry, *, strict: bool) -> Blueprint:
    """The Blueprint in `path`, its warnings printed; exit 2 listing every problem."""
    try:
        model = load_blueprint_file(path)
        warnings = ensure_valid(model, registry, strict=strict)
    except InvalidBlueprint as exc:
        _print_problems(path, exc)
        sys.exit(EXIT_INVALID)
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    return model


@dataclass(frozen=True)
class Submission:
    """One `conductor run`: what to submit and how to follow it."""

    model: Blueprint
    inputs: dict[str, Any]
    registry: NodeRegistry
    detach: bool
    timeout_s: float | None
    show_progress: bool
    quiet: bool = False  # --json: nothing on stderr but problems

    def run(self, settings: Settings) -> dict[str, Any]:
        """Submit; unless detached, follow the live events to the result."""
        stores = make_stores(settings)
        dispatcher = Dispatcher(create_app(settings), stores, self.registry)
        client = redis.Redis.from_url(str(settings.redis_url))
        execution_id = str(uuid.uuid4())
        live = self.show_progress
        with ExecutionFollower(client, execution_id, live=live) as follower:  # before submitting
            plan = dispatcher.submit(self.model, self.inputs, execution_id)
            if not (self.quiet or self.detach):
                count = len(plan.nodes)
                click.echo(
                    f"running {self.model.name!r} ({count} node{'s' * (count != 1)}) "
                    f"as {execution_id}",
                    err=True,
                )
            if self.detach:
                return {"id": plan.execution_id, "status": "queued"}
            timeout_s = self.timeout_s
            if timeout_s is None and plan.timeout_ms:
                timeout_s = plan.timeout_ms / 1000 + 5
            if not self.show_progress:
                return follower.wait(stores, timeout_s)
            console = Console(stderr=True)
            with ProgressView(console, self.model.name, len(plan.nodes)) as view:
                return follower.wait(stores, timeout_s, on_event=view)


def record_history(settings: Settings) -> None:
    """The embedded stack's recorder: move the run's events into the history store."""
    history = open_history(settings.history_url)
    try:
        Recorder(redis.Redis.from_url(str(settings.redis_url)), history).drain()
    finally:
        history.close()


def parse_inputs(pairs: tuple[str, ...], inputs_json: str | None) -> dict[str, Any]:
    """`--inputs` JSON first, then each `--input k=v` (v as JSON when it parses, else text)."""
    inputs: dict[str, Any] = {}
    if inputs_json:
        try:
            parsed = json.loads(inputs_json)
        except json.JSONDecodeError as exc:
            raise click.BadParameter(f"not JSON: {exc}", param_hint="--inputs") from None
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
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _print_problems(path: Path, exc: InvalidBlueprint) -> None:
    click.echo(f"{path}: {len(exc.problems)} problem(s)", err=True)
    for problem in exc.problems:
        click.echo(f"  {problem}", err=True)


def _print_result(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(result))
        return
    if result["success"]:
        click.echo(f"succeeded in {result['duration_ms']} ms", err=True)
    else:
        error = result.get("error") or {}
        where = f" at node {error['nodeId']}" if error.get("nodeId") else ""
        click.echo(
            f"{result['status']}{where}: [{error.get('code')}] {error.get('message')}", err=True
        )
        click.echo(json.dumps({"error": error}, indent=2, ensure_ascii=False))
        return
    results = {
        node: output.get("result") if isinstance(output, dict) else output
        for node, output in result["data"].items()
    }
    click.echo(json.dumps(results, indent=2, ensure_ascii=False))


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
    strict = strict or Settings.from_env().strict_parameters
    _load_valid(blueprint, default_registry(), strict=strict)
    click.echo(f"{blueprint}: valid")
