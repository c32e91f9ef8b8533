"""`conductor api`: the HTTP API under uvicorn."""

from __future__ import annotations

import click
import uvicorn

from conductor.api.app import create_api
from conductor.api.context import ApiContext
from conductor.cli.shared_redis import shared_settings
from conductor.ports import ensure_port_free


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8080, show_default=True)
@click.option("--workers", type=int, default=1, show_default=True, help="uvicorn processes")
def api(host: str, port: int, workers: int) -> None:
    """Serve the HTTP API (CONDUCTOR_API_TOKEN set: bearer token required)."""
    settings = shared_settings()
    ensure_port_free(host, port, what="api")

    if workers > 1:
        uvicorn.run(
            "conductor.api.factory:app", host=host, port=port, workers=workers, factory=True
        )
        return
    uvicorn.run(create_api(ApiContext.from_settings(settings)), host=host, port=port)
