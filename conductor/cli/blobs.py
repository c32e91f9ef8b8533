"""`conductor blobs`: the blob store of large node outputs."""

from __future__ import annotations

import json

import click

from conductor.blob_collection import BlobCollector, CollectionBusy
from conductor.cli.shared_redis import shared_settings
from conductor.services import Services
from storage.blob_gc import Collection


@click.group()
def blobs() -> None:
    """The blob store (CONDUCTOR_BLOB_URL) of large node outputs."""


@blobs.command()
@click.option("--dry-run", is_flag=True, help="Report what would be deleted; delete nothing.")
@click.option(
    "--grace-s",
    type=click.FloatRange(min=0),
    default=None,
    help="Spare blobs written this recently (default CONDUCTOR_BLOB_GC_GRACE_S).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def gc(dry_run: bool, grace_s: float | None, as_json: bool) -> None:
    """Delete blobs no live or recorded execution refers to (needs CONDUCTOR_REDIS_URL and
    the history the recorder writes, CONDUCTOR_HISTORY_URL)."""
    services = Services.from_settings(shared_settings(), name="blobs-gc")
    try:
        done = BlobCollector(services).run_once(dry_run=dry_run, grace_s=grace_s)
    except CollectionBusy as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        services.close()
    click.echo(json.dumps(done.as_dict()) if as_json else _report(done))


def _report(done: Collection) -> str:
    verb = "would delete" if done.dry_run else "deleted"
    kept = done.bytes - done.deleted_bytes
    lines = [
        f"{done.location}: {done.blobs} blobs, {_size(done.bytes)}",
        f"{verb} {done.deleted} blobs ({_size(done.deleted_bytes)}); "
        f"kept {done.blobs - done.deleted} ({_size(kept)}): {done.referenced} referenced, "
        f"{done.young} within the grace period",
    ]
    if done.partial_swept:
        lines.append(f"removed {done.partial_swept} abandoned partial writes")
    return "\n".join(lines)


def _size(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"  # pragma: no cover
