"""`conductor flower`: Flower for Conductor's Celery app, behind basic auth when configured."""

from __future__ import annotations

import click

from conductor.cli.shared_redis import shared_settings
from conductor.model.settings import Settings
from conductor.ports import ensure_port_free
from conductor.services import Services

# Node tasks are `conductor.node(execution_id, node_key, node_type=...)`: show their arguments.
TASK_COLUMNS = "name,uuid,state,args,kwargs,received,started,runtime,worker"


def flower_argv(settings: Settings, address: str, port: int, url_prefix: str | None) -> list[str]:
    """The `celery flower` command line for these settings (kept in-process: no secret in ps)."""
    argv = [
        "flower",
        f"--address={address}",
        f"--port={port}",
        f"--tasks-columns={TASK_COLUMNS}",
    ]
    if url_prefix:
        argv.append(f"--url-prefix={url_prefix}")
    if settings.flower_basic_auth:
        argv.append(f"--basic-auth={settings.flower_basic_auth}")
    return argv


@click.command()
@click.option("--address", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=5555, show_default=True)
@click.option("--url-prefix", default=None, help="Serve under this path (behind a proxy).")
def flower(address: str, port: int, url_prefix: str | None) -> None:
    """Serve Flower for Conductor's workers and `conductor.node` tasks (needs CONDUCTOR_REDIS_URL).

    With CONDUCTOR_FLOWER_BASIC_AUTH=user:password (comma-separated for several users) the UI
    and Flower's HTTP API require it; without it, Flower's own default applies (the UI is open,
    the HTTP API refuses requests unless FLOWER_UNAUTHENTICATED_API is set).
    """
    settings = shared_settings()
    credentials = settings.flower_basic_auth
    if credentials is not None and not all(":" in pair for pair in credentials.split(",")):
        raise click.UsageError("CONDUCTOR_FLOWER_BASIC_AUTH must be user:password[,user:password]")
    ensure_port_free(address, port, what="flower")
    # Flower reads task names, arguments and states from worker events: no tasks to register.
    Services.from_settings(settings).celery.start(flower_argv(settings, address, port, url_prefix))
