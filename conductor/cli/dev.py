"""`conductor dev`: the docker-compose topology as local processes."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from platformdirs import user_data_path

from conductor.dev import DevOptions, exclusive, run_stack
from conductor.embedded import free_port
from conductor.ports import ensure_port_free


@click.command()
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True)
@click.option(
    "-c", "--concurrency", type=click.IntRange(1), default=2, show_default=True,
    help="Processes per worker.",
)  # fmt: skip
@click.option("--api-port", type=int, default=8080, show_default=True, help="0: a free port.")
@click.option("--flower", "with_flower", is_flag=True, help="Also run Flower.")
@click.option("--flower-port", type=int, default=5555, show_default=True, help="0: a free port.")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="CONDUCTOR_DATA_DIR",
    default=lambda: user_data_path("conductor"),
    show_default="$CONDUCTOR_DATA_DIR, else the user data dir",
    help="History (SQLite unless CONDUCTOR_HISTORY_URL), blobs, files, Blueprints, Redis' "
    "append-only file and the logs.",
)
def dev(
    *,
    workers: int,
    concurrency: int,
    api_port: int,
    with_flower: bool,
    flower_port: int,
    data_dir: Path,
) -> None:
    """Run the docker-compose topology as local processes, until Ctrl-C or SIGTERM.

    A private redis-server (append-only file on) on a free loopback port, `conductor api`,
    WORKERS `conductor worker` processes, `conductor recorder` and, with --flower, `conductor
    flower` (CONDUCTOR_FLOWER_BASIC_AUTH protects it). It prints the URLs and the environment
    to export to use it; stopping it stops every child (they die with it even when it is
    killed).
    """
    ensure_port_free("127.0.0.1", api_port, what="api", hint="--api-port (0: a free one)")
    if with_flower:
        ensure_port_free(
            "127.0.0.1", flower_port, what="flower", hint="--flower-port (0: a free one)"
        )
    options = DevOptions(
        data_dir=data_dir.resolve(),
        workers=workers,
        concurrency=concurrency,
        api_port=api_port or free_port(),
        flower_port=(flower_port or free_port()) if with_flower else None,
    )
    with exclusive(options.data_dir):
        sys.exit(run_stack(options))
