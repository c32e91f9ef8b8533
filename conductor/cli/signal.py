"""`conductor signal ID NAME [--data JSON]`: deliver a payload to an execution's
`wait-for-signal` nodes (docs/waits.md)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from conductor.cli.shared_redis import shared_settings
from conductor.exit_codes import EXIT_FAILED
from conductor.model.loader import parse_json_bytes
from conductor.model.problems import InvalidBlueprint
from conductor.services import Services
from conductor.signals import SignalRefused, Signals


@click.command(name="signal")
@click.argument("execution_id")
@click.argument("name")
@click.option("--data", default=None, help="The payload, as JSON (default: null).")
@click.option("--json", "as_json", is_flag=True, help="Print the receipt as JSON.")
def signal(execution_id: str, name: str, data: str | None, as_json: bool) -> None:
    """Send signal NAME to execution EXECUTION_ID: the node waiting for it continues with the
    payload as its result (a signal sent before any node waits is kept for the first)."""
    payload = _payload(data)
    services = Services.from_settings(shared_settings())
    try:
        receipt = Signals(services.dispatcher).send(execution_id, name, payload)
    except SignalRefused as exc:
        if exc.invalid:
            raise click.BadParameter(str(exc), param_hint="NAME or --data") from None
        click.echo(f"signal not sent: {exc}", err=True)
        sys.exit(EXIT_FAILED)
    finally:
        services.close()
    woke = list(receipt.woken)
    if as_json:
        click.echo(json.dumps({"execution_id": execution_id, "signal": name, "woke": woke}))
    elif woke:
        click.echo(f"{execution_id}: signal {name} sent; woke {', '.join(woke)}")
    else:
        click.echo(f"{execution_id}: signal {name} kept for the next node that waits for it")


def _payload(data: str | None) -> Any:
    if data is None:
        return None
    try:
        return parse_json_bytes(data.encode())
    except InvalidBlueprint as exc:
        raise click.BadParameter(f"not JSON: {exc.problems[0]}", param_hint="--data") from None
