"""`conductor replay ID [--from NODE] [--inputs JSON]`: run a finished execution again from
what the history store recorded, as a new execution linked to it."""

from __future__ import annotations

import sys
import uuid
from functools import partial
from typing import Any

import click

from conductor.cli.run import parse_inputs
from conductor.embedded import embedded
from conductor.exit_codes import EXIT_INVALID
from conductor.model.settings import Settings


@click.command()
@click.argument("execution_id")
@click.option(
    "--from",
    "from_node",
    metavar="NODE",
    help="Re-run NODE (its key, as `history show` lists it) and what depends on it; every "
    "other node keeps its recorded output (node.cached).",
)
@click.option(
    "--inputs",
    "inputs_json",
    metavar="JSON",
    help="A JSON object of inputs that replace the recorded inputs of the same names.",
)
@click.option("--json", "as_json", is_flag=True, help="Print only the result object, as JSON.")
@click.option("--detach", is_flag=True, help="Submit, print the new execution id, do not wait.")
@click.option("--timeout", "timeout_s", type=float, default=None, help="Stop waiting after this.")
def replay(
    *,
    execution_id: str,
    from_node: str | None,
    inputs_json: str | None,
    as_json: bool,
    detach: bool,
    timeout_s: float | None,
) -> None:
    """Run a finished execution again from its recorded Blueprint and inputs.

    Exit 0 succeeded, 1 the replay failed, 2 unknown execution, not finished, unknown --from
    node or bad --inputs, 3 Redis or the history store is not reachable.
    """
    settings = Settings.from_env()
    inputs = parse_inputs((), inputs_json) if inputs_json is not None else None
    if detach and settings.redis_url is None:
        raise click.UsageError("--detach needs CONDUCTOR_REDIS_URL (the embedded Redis stops)")
    submit = partial(
        _replay, execution_id=execution_id, from_node=from_node, inputs=inputs,
        detach=detach, timeout_s=timeout_s, quiet=as_json,
    )  # fmt: skip
    if settings.redis_url is None:
        with embedded(settings) as private:
            result = submit(private)
            from conductor.runner import record_history  # noqa: PLC0415

            record_history(private)  # the embedded stack: history outlives its Redis
    else:
        result = submit(settings)
    from conductor.runner import end_command  # noqa: PLC0415  (loaded by the submit already)

    end_command(result, detach=detach, as_json=as_json)


def _replay(
    settings: Settings,
    *,
    execution_id: str,
    from_node: str | None,
    inputs: dict[str, Any] | None,
    detach: bool,
    timeout_s: float | None,
    quiet: bool,
) -> dict[str, Any]:
    """Submit the replay on `settings`' Redis and, unless detached, wait for its result."""
    from conductor.model.problems import InvalidBlueprint  # noqa: PLC0415  (heavy imports)
    from conductor.replay import Replayer, ReplayError, UnknownNode  # noqa: PLC0415
    from conductor.services import Services  # noqa: PLC0415
    from conductor.waiting import ExecutionFollower  # noqa: PLC0415

    services = Services.from_settings(settings)
    try:
        new_id = str(uuid.uuid4())
        replayer = Replayer(services.history, services.dispatcher)
        events = services.backend.event_source()
        with ExecutionFollower(events, new_id, live=False) as follower:  # before submitting
            try:
                plan = replayer.replay(
                    execution_id, from_node=from_node, inputs=inputs, new_id=new_id
                )
            except UnknownNode as exc:
                raise click.BadParameter(str(exc), param_hint="--from") from None
            except InvalidBlueprint as exc:
                raise click.BadParameter(str(exc.problems[0]), param_hint="--inputs") from None
            except ReplayError as exc:
                click.echo(f"error: {exc}", err=True)
                sys.exit(EXIT_INVALID)
            if not quiet and not detach:
                click.echo(f"replaying {execution_id} as {plan.execution_id}", err=True)
            if detach:
                return {"id": plan.execution_id, "status": "queued"}
            return follower.wait(services.stores, timeout_s)
    finally:
        services.close()
