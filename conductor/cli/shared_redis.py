"""The settings of a command that works on the workers' Redis: refused, as a usage error that
says what to set, when CONDUCTOR_REDIS_URL is not set."""

from __future__ import annotations

import click

from conductor.model.settings import Settings


def shared_settings() -> Settings:
    """The settings from the environment, with CONDUCTOR_REDIS_URL required."""
    settings = Settings.from_env()
    redis_url(settings)
    return settings


def redis_url(settings: Settings) -> str:
    """CONDUCTOR_REDIS_URL, required."""
    if settings.redis_url is None:
        raise click.UsageError("set CONDUCTOR_REDIS_URL to the Redis the workers use")
    return settings.redis_url
