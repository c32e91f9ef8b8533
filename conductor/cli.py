"""The `conductor` command line (CONTRACT section 4)."""

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
from conductor.control_commands import CONTROL_COMMANDS
from conductor.dev import dev
from conductor.dispatch import Dispatcher
from conductor.embedded import EmbeddedError, embedded
from conductor.flower_command import flower
from conductor.history_commands import history, recorder
from conductor.loader import load_blueprint_file
from conductor.problems import InvalidBlueprint
from conductor.progress import ProgressView
from conductor.queues import standard_queues
from conductor.reconciler import reconcile_in_worker
from conductor.recorder import Recorder
from conductor.settings import Settings
from conductor.submission import Submitter
from conductor.submit_task import register_submit_task
from conductor.validation import ensure_valid
from conductor.waiting import ExecutionFollower
from nodes.registry import NodeRegistry, default_registry
from storage.blueprints import open_blueprint_store
from storage.history import open_history
from storage.rate_limits import RateLimiter
from workers.app import create_app
from workers.presence import announce_presence
from workers.tasks import make_stores, node_environment, redis_client, register_tasks

EXIT_FAILED = 1
EXIT_INVALID = 2


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Conductor runs Atomiton Blueprints on Celery workers over Redis.

    Without CONDUCTOR_REDIS_URL, `conductor run` starts a private Redis and worker for the run.
    """


@main.command()
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
    """Run a Blueprint file and print its result (exit 0 success, 1 failed, 2 invalid)."""
    settings = Settings.from_env()
    inputs = parse_inputs(input_pairs, inputs_json)
    registry = default_registry()
    model = _load_valid(blueprint, registry)
    show_progress = not as_json and sys.stderr.isatty()
    submission = Submission(model, inputs, registry, detach, timeout_s, show_progress)
    if settings.redis_url is None:
        if detach:
            raise click.UsageError("--detach needs CONDUCTOR_REDIS_URL (the embedded Redis stops)")
        try:
            with embedded(settings) as private:
                result = submission.run(private)
                record_history(private)
        except EmbeddedError as exc:
            raise click.ClickException(str(exc)) from None
    else:
        result = submission.run(settings)
    if detach:
        click.echo(json.dumps(result) if as_json else result["id"])
        return
    _print_result(result, as_json)
    sys.exit(0 if result["success"] else EXIT_FAILED)


def _load_valid(path: Path, registry: Any) -> Any:
    try:
        model = load_blueprint_file(path)
        ensure_valid(model, registry)
    except InvalidBlueprint as exc:
        _print_problems(path, exc)
        sys.exit(EXIT_INVALID)
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

    def run(self, settings: Settings) -> dict[str, Any]:
        """Submit; unless detached, follow the live events to the result."""
        stores = make_stores(settings)
        dispatcher = Dispatcher(create_app(settings), stores, self.registry)
        client = redis.Redis.from_url(str(settings.redis_url))
        execution_id = str(uuid.uuid4())
        live = self.show_progress
        with ExecutionFollower(client, execution_id, live=live) as follower:  # before submitting
            plan = dispatcher.submit(self.model, self.inputs, execution_id)
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
    results = {
        node: output.get("result") if isinstance(output, dict) else output
        for node, output in result["data"].items()
    }
    click.echo(json.dumps(results, indent=2, ensure_ascii=False))


main.add_command(recorder)
for _command in CONTROL_COMMANDS:
    main.add_command(_command)
main.add_command(history)
main.add_command(flower)
main.add_command(dev)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8080, show_default=True)
@click.option("--workers", type=int, default=1, show_default=True, help="uvicorn processes")
def api(host: str, port: int, workers: int) -> None:
    """Serve the HTTP API (CONDUCTOR_API_TOKEN set: bearer token required)."""
    settings = Settings.from_env()
    if settings.redis_url is None:
        raise click.UsageError("set CONDUCTOR_REDIS_URL to the Redis the workers use")
    import uvicorn  # noqa: PLC0415  (only this command needs the server)

    from conductor.api.app import create_api  # noqa: PLC0415
    from conductor.api.context import ApiContext  # noqa: PLC0415

    if workers > 1:
        uvicorn.run(
            "conductor.api.factory:app", host=host, port=port, workers=workers, factory=True
        )
        return
    uvicorn.run(create_api(ApiContext.from_settings(settings)), host=host, port=port)


@main.command()
@click.argument("blueprint", type=click.Path(path_type=Path))
def validate(blueprint: Path) -> None:
    """Check a Blueprint file: exit 0, or 2 listing every problem with its path."""
    _load_valid(blueprint, default_registry())
    click.echo(f"{blueprint}: valid")


@main.command()
@click.option(
    "-Q",
    "--queues",
    default=None,
    help="Comma-separated queues to consume (default: conductor, celery and every queue in "
    "CONDUCTOR_QUEUE_ROUTES; 'celery' carries conductor.submit from plain Celery clients).",
)
@click.option(
    "-c", "--concurrency", type=int, default=None, help="Worker processes (default: CPUs)."
)
@click.option("-n", "--hostname", default=None, help="Worker name, e.g. io@%h.")
@click.option("--loglevel", default="INFO", show_default=True)
def worker(
    queues: str | None, concurrency: int | None, hostname: str | None, loglevel: str
) -> None:
    """Run a Celery worker for node tasks (needs CONDUCTOR_REDIS_URL)."""
    settings = Settings.from_env()
    if settings.redis_url is None:
        raise click.UsageError("set CONDUCTOR_REDIS_URL to the Redis the workers share")
    consumed = [name.strip() for name in (queues or "").split(",") if name.strip()]
    consumed = consumed or standard_queues(settings)
    app = create_app(settings)
    announce_presence(app, redis_client(settings.redis_url), consumed)
    stores, registry = make_stores(settings), default_registry()
    client = redis.Redis.from_url(settings.redis_url)
    register_tasks(app, stores, registry, node_environment(settings), RateLimiter(client))
    blueprints = open_blueprint_store(settings.blueprints_dir)
    submitter = Submitter(
        Dispatcher(app, stores, registry, strict=settings.strict_parameters),
        client,
        blueprints,
        claim_ttl_s=settings.state_ttl_s,
    )
    register_submit_task(app, submitter)
    reconcile_in_worker(settings, registry)
    # No mingle: revocations are not Celery's in-memory ones (Conductor's state is in Redis),
    # and mingle makes every worker wait a second at start-up.
    argv = ["worker", "-Q", ",".join(consumed), "--loglevel", loglevel, "-E", "--without-mingle"]
    if concurrency:
        argv += ["-c", str(concurrency)]
    if hostname:
        argv += ["-n", hostname]
    app.worker_main(argv)


@main.command()
@click.argument("node_type", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (with full JSON Schemas).")
def nodes(node_type: str | None, as_json: bool) -> None:
    """List node types with their parameters (JSON Schema), or show one TYPE."""
    registry = default_registry()
    if node_type is not None and node_type not in registry:
        known = ", ".join(registry.names())
        raise click.BadParameter(f"unknown node type {node_type!r}; known: {known}")
    kinds = [registry.get(node_type)] if node_type else list(registry)
    entries = [catalogue_entry(kind) for kind in kinds]
    if as_json:
        click.echo(json.dumps(entries[0] if node_type else entries, indent=2))
        return
    for entry in entries:
        click.echo(f"{entry['type']} {entry['version']}: {entry['description']}")
        for line in parameter_lines(entry["parameters"]):
            click.echo(f"  {line}")
        click.echo()


def catalogue_entry(kind: Any) -> dict[str, Any]:
    """A node type as the catalogue shows it."""
    return {
        "type": kind.type_name,
        "version": kind.version,
        "description": kind.description,
        "parameters": kind.json_schema(),
    }


def _kind(prop: dict[str, Any]) -> str:
    if "enum" in prop:
        return "|".join(map(str, prop["enum"]))
    if "type" in prop:
        return str(prop["type"])
    return "|".join(_kind(option) for option in prop.get("anyOf", [])) or "any"


def parameter_lines(schema: dict[str, Any]) -> list[str]:
    """One line per parameter: name, type, default and description."""
    required = set(schema.get("required", []))
    lines = []
    for name, prop in schema.get("properties", {}).items():
        kind = _kind(prop)
        default = "required" if name in required else f"default {json.dumps(prop.get('default'))}"
        note = f"  {prop['description']}" if "description" in prop else ""
        lines.append(f"{name:<22} {kind:<18} {default}{note}")
    return lines
