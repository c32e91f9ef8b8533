"""`conductor recorder`: moves events from Redis into the execution-history store."""

from __future__ import annotations

import signal
import threading

import click

from conductor.cli.shared_redis import shared_settings
from conductor.model.settings import display_url
from conductor.recorder import Recorder
from conductor.services import Services


@click.command()
@click.option(
    "--name",
    default=None,
    help="Consumer name, stable across restarts (default: the host name); give each recorder "
    "on one host its own.",
)
def recorder(name: str | None) -> None:
    """Move events from Redis into the execution-history store (CONDUCTOR_HISTORY_URL)."""
    settings = shared_settings()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    services = Services.from_settings(settings)
    click.echo(f"recording into {display_url(settings.history_url)}", err=True)
    try:
        Recorder.from_services(services, consumer=name).run(stop)
    finally:
        services.close()
