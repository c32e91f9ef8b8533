"""`conductor cancel|pause|resume|retry|step ID`: execution control from the command line."""

from __future__ import annotations

import json
import sys

import click

from conductor.cli.shared_redis import shared_settings
from conductor.control import Control, ControlOutcome
from conductor.exit_codes import EXIT_FAILED
from conductor.services import Services

_HELP = {
    "cancel": "Cancel an execution: no node starts after it, running nodes stop within 5 s.",
    "pause": "Pause an execution: running nodes finish, no new node starts.",
    "resume": "Resume a paused execution from its stored outputs (to its next breakpoint).",
    "retry": "Retry a failed or cancelled execution: re-run its failed and never-run nodes, "
    "keeping successful outputs.",
    "step": "Step a paused execution: run the nodes whose inputs are all there, then pause "
    "before the next (see `conductor inspect`).",
}


def _control_command(name: str) -> click.Command:
    @click.command(name=name, help=_HELP[name])
    @click.argument("execution_id")
    @click.option("--json", "as_json", is_flag=True, help='Print {"id": ..., "status": ...}.')
    def command(execution_id: str, as_json: bool) -> None:
        settings = shared_settings()
        services = Services.from_settings(settings)
        stores = services.stores
        control = Control(services.dispatcher)
        outcome: ControlOutcome = getattr(control, name)(execution_id)
        meta = stores.state.snapshot(execution_id, []).execution
        status = meta.status.value if meta is not None else "unknown"
        if outcome is ControlOutcome.NOT_FOUND:
            click.echo(f"no execution {execution_id!r} in Redis (unknown or expired)", err=True)
            sys.exit(EXIT_FAILED)
        if outcome is ControlOutcome.CONFLICT:
            click.echo(f"cannot {name} execution {execution_id}: it is {status}", err=True)
            sys.exit(EXIT_FAILED)
        if as_json:
            click.echo(json.dumps({"id": execution_id, "status": status}))
        else:
            click.echo(f"{execution_id}: {status}")

    return command


CONTROL_COMMANDS = [_control_command(name) for name in _HELP]
cancel, pause, resume, retry, step = CONTROL_COMMANDS
