"""`conductor hook add|list|rm`: webhook triggers served at POST /v1/hooks/NAME."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click

from conductor.cli.shared_redis import redis_url, shared_settings
from conductor.exit_codes import EXIT_FAILED, EXIT_INVALID
from conductor.hooks import InvalidHook, new_hook, parse_map
from conductor.model.settings import Settings
from storage.blueprints import open_blueprint_store
from storage.hooks import HookExists, HookNotFound, RedisHooks

OPTION_OF = {
    "name": "NAME", "blueprint_id": "--blueprint", "mapping": "--map",
    "secret_env": "--secret-env", "secret": "--secret",
}  # fmt: skip


@click.group()
def hook() -> None:
    """Start stored Blueprints from signed HTTP requests (POST /v1/hooks/NAME)."""


@contextmanager
def _store() -> Iterator[RedisHooks]:
    settings = shared_settings()
    store = RedisHooks.connect(redis_url(settings), settings.redis_master)
    try:
        yield store
    finally:
        store.close()


@hook.command()
@click.argument("name")
@click.option("--blueprint", "blueprint_id", required=True, help="A stored Blueprint's id.")
@click.option(
    "--map", "maps", multiple=True,
    help="INPUT=SOURCE.PATH, SOURCE one of body, headers, query (repeat it): "
    "repo=body.repository.full_name, event=headers.X-GitHub-Event, ref=query.ref.",
)  # fmt: skip
@click.option("--secret-env", help="The variable the API reads the HMAC secret from (recommended).")
@click.option(
    "--secret", "secret_text",
    help="The HMAC secret itself, stored in Redis with the hook; '-' reads it from stdin.",
)  # fmt: skip
def add(
    name: str,
    blueprint_id: str,
    maps: tuple[str, ...],
    secret_env: str | None,
    secret_text: str | None,
) -> None:
    """Add hook NAME for a stored Blueprint."""
    secret = sys.stdin.readline().strip() if secret_text == "-" else secret_text
    try:
        created = new_hook(
            open_blueprint_store(Settings.from_env().blueprints_dir),
            name=name, blueprint_id=blueprint_id, mapping=parse_map(list(maps)),
            secret_env=secret_env, secret=secret,
        )  # fmt: skip
    except InvalidHook as exc:
        for problem in exc.problems:
            click.echo(f"error: {OPTION_OF[problem.field]}: {problem.message}", err=True)
        sys.exit(EXIT_INVALID)
    with _store() as store:
        try:
            store.add(created)
        except HookExists as exc:
            click.echo(f"error: NAME: {exc}", err=True)
            sys.exit(EXIT_INVALID)
    click.echo(f"hook {name}: POST /v1/hooks/{name} starts Blueprint {blueprint_id}")


@hook.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="A JSON list of hooks (no secrets).")
def list_hooks(as_json: bool) -> None:
    """Every hook (where its secret comes from, never the secret)."""
    with _store() as store:
        views = [found.public() for found in store.all()]
    if as_json:
        click.echo(json.dumps(views))
        return
    for view in views:
        mapping = " ".join(f"{k}={v}" for k, v in view["mapping"].items()) or "(the body)"
        click.echo(f"{view['name']}  {view['blueprint_id']}  {mapping}  secret {view['secret']}")


@hook.command()
@click.argument("name")
def rm(name: str) -> None:
    """Remove hook NAME: its URL answers 404 from now on."""
    with _store() as store:
        try:
            store.remove(name)
        except HookNotFound as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_FAILED)
    click.echo(f"removed hook {name}")
