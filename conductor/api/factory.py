"""`app()` for uvicorn's --factory mode (several worker processes)."""

from __future__ import annotations

from fastapi import FastAPI

from conductor.api.app import create_api
from conductor.api.context import ApiContext
from conductor.model.settings import Settings


def app() -> FastAPI:
    """The API from the environment's settings."""
    return create_api(ApiContext.from_settings(Settings.from_env()))
