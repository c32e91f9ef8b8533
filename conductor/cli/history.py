"""`conductor history`: reading the execution-history store back."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import asdict
from datetime import UTC, datetime

import click

from conductor.children import Family, family_in_history
from conductor.exit_codes import EXIT_INVALID
from conductor.model.settings import Settings
from storage.critical_path import critical_path
from storage.history import ExecutionRecord, HistoryStore, NodeRunRecord, open_history
from storage.state import ExecutionStatus

TIMELINE_WIDTH = 30
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@click.group()
def history() -> None:
    """Read the execution-history store (CONDUCTOR_HISTORY_URL)."""


def _store() -> HistoryStore:
    return open_history(Settings.from_env().history_url)


@history.command(name="list")
@click.option("--status", type=click.Choice([s.value for s in ExecutionStatus]))
@click.option("--blueprint", "blueprint_id", help="Only executions of this Blueprint id.")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.option("--cursor", help="The next_cursor of a previous page.")
@click.option("--json", "as_json", is_flag=True)
def list_executions(
    status: str | None, blueprint_id: str | None, limit: int, cursor: str | None, as_json: bool
) -> None:
    """Executions, newest first."""
    store = _store()
    try:
        page = store.list_executions(
            status=ExecutionStatus(status) if status else None,
            blueprint_id=blueprint_id,
            limit=limit,
            cursor=cursor,
        )
    finally:
        store.close()
    if as_json:
        click.echo(page.model_dump_json())
        return
    for record in page.items:
        click.echo(
            f"{record.id}  {record.status.value:<9}  {_when(record.created_at)}  "
            f"{_ms_text(record.duration_ms):>9}  {record.blueprint_name or record.blueprint_id}"
        )
    if page.next_cursor:
        click.echo(f"more: conductor history list --cursor {page.next_cursor}", err=True)


@history.command()
@click.argument("execution_id")
@click.option("--json", "as_json", is_flag=True)
@click.option(
    "--critical-path",
    "with_path",
    is_flag=True,
    help="Mark the nodes on the critical path (with --json: a `critical_path` list).",
)
def show(execution_id: str, as_json: bool, with_path: bool) -> None:
    """An execution: its status, result or error, and a timeline of its nodes with what each
    used (queue wait, CPU time, peak memory, input and output bytes)."""
    store = _store()
    try:
        record = store.execution(execution_id)
        runs = store.node_runs(execution_id) if record else []
        found = family_in_history(store, execution_id, runs) if record else Family()
    finally:
        store.close()
    if record is None:
        raise click.ClickException(f"no execution {execution_id!r} in the history store")
    if as_json:
        payload = {
            **record.model_dump(mode="json"),
            "nodes": [r.model_dump(mode="json") for r in runs],
            "parent": None if found.parent is None else asdict(found.parent),
            "children": [asdict(child) for child in found.children],
        }
        if with_path:
            payload["critical_path"] = critical_path(runs)
        click.echo(json.dumps(payload))
        return
    path = critical_path(runs) if with_path else None
    for line in [*describe(record, runs, path), *family_lines(found)]:
        click.echo(line)


def family_lines(found: Family) -> list[str]:
    """`parent ID (node N, status)` and one `child ID ...` line per child."""
    links = [("parent", found.parent)] if found.parent else []
    links += [("child", child) for child in found.children]
    return [
        f"{kind:<7} {link.id}  (node {link.node}, {link.status or 'unknown'})"
        for kind, link in links
    ]


@history.command()
@click.argument("execution_id")
@click.option("--after", "after_seq", type=int, default=0, help="Only events after this seq.")
@click.option("--json", "as_json", is_flag=True, help="One JSON event per line.")
def events(execution_id: str, after_seq: int, as_json: bool) -> None:
    """An execution's events in seq order."""
    store = _store()
    try:
        found = store.events(execution_id, after_seq=after_seq)
    finally:
        store.close()
    for event in found:
        if as_json:
            click.echo(event.model_dump_json())
        else:
            node = f" {event.node_id}" if event.node_id else ""
            data = json.dumps(event.data)[:120]
            click.echo(f"{event.seq:>4}  {_when(event.ts)}  {event.type.value}{node}  {data}")


@history.command()
@click.argument("a")
@click.argument("b")
@click.option("--json", "as_json", is_flag=True, help="The differences as one JSON object.")
def diff(a: str, b: str, as_json: bool) -> None:
    """Per-node output differences between executions A and B (a replay and its original)."""
    from conductor.history_diff import UnknownExecution, describe, diff_executions  # noqa: PLC0415
    from storage.blobs import FilesystemBlobStore  # noqa: PLC0415

    settings = Settings.from_env()
    store = open_history(settings.history_url)
    try:
        found = diff_executions(store, FilesystemBlobStore(settings.blob_dir), a, b)
    except UnknownExecution as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_INVALID)
    finally:
        store.close()
    if as_json:
        click.echo(found.model_dump_json())
        return
    for line in describe(found):
        click.echo(line)


@history.command()
@click.option("--older-than", "older_than", required=True, help="An age such as 30d, 12h, 90m.")
def prune(older_than: str) -> None:
    """Delete executions that finished longer ago than --older-than, with their events."""
    store = _store()
    try:
        removed = store.prune(parse_duration_s(older_than))
    finally:
        store.close()
    click.echo(f"pruned {removed} execution(s)")


def parse_duration_s(text: str) -> float:
    """`30d`, `12h`, `90m`, `45s`, `2w` in seconds."""
    match = _DURATION.match(text.strip())
    if not match:
        raise click.BadParameter(
            f"{text!r} is not an age like 30d, 12h, 90m", param_hint="--older-than"
        )
    return float(match.group(1)) * _UNIT_S[match.group(2)]


def describe(
    record: ExecutionRecord, runs: list[NodeRunRecord], path: list[str] | None = None
) -> list[str]:
    """The human view of `history show`: header, error, and one timeline row per node (`path`:
    the critical path, its nodes marked `*`)."""
    lines = [
        f"{record.id}  {record.blueprint_name} ({record.blueprint_id}"
        f"{' ' + record.blueprint_version if record.blueprint_version else ''})",
        f"status {record.status.value}, created {_when(record.created_at)}, "
        f"took {_ms_text(record.duration_ms)}",
    ]
    if record.replay_of:
        lines.append(f"replay of {record.replay_of}")
    if record.error:
        code, node, message = (record.error.get(k) for k in ("code", "nodeId", "message"))
        lines.append(f"error [{code}] at {node}: {message}")
    origin = record.started_at or record.created_at
    span = max((r.finished_at or r.started_at or origin) - origin for r in runs) if runs else 0
    margin = "  " if path is not None else ""  # room for the critical path's marks
    lines.append(
        f"{margin}{'node':<28} {'status':<9} {'try':>3} {'start':>8} {'end':>8} {'took':>8} "
        f"{'wait':>8} {'cpu':>8} {'rss':>7} {'in':>7} {'out':>7}  worker"
    )
    on_path = set(path or [])
    for run in runs:
        mark = "* " if run.node_id in on_path else margin
        lines.append(mark + _row(run, origin, span))
    if path is not None:
        lines.append("critical path: " + (" -> ".join(path) if path else "-"))
    return lines


def _row(run: NodeRunRecord, origin: float, span: float) -> str:
    start = None if run.started_at is None else (run.started_at - origin) * 1000
    end = None if run.finished_at is None else (run.finished_at - origin) * 1000
    bar = _bar(start, end, span * 1000)
    return (
        f"{run.node_id[:28]:<28} {run.status.value:<9} {run.attempts:>3} "
        f"{_offset(start):>8} {_offset(end):>8} {_ms_text(run.duration_ms):>8} "
        f"{_ms_text(run.queue_wait_ms):>8} {_ms_text(run.cpu_ms):>8} "
        f"{_bytes_text(run.peak_rss_bytes):>7} {_bytes_text(run.input_bytes):>7} "
        f"{_bytes_text(run.output_bytes):>7}  {run.worker or '-'}  |{bar}|"
    )


def _bar(start_ms: float | None, end_ms: float | None, span_ms: float) -> str:
    if start_ms is None or span_ms <= 0:
        return " " * TIMELINE_WIDTH
    first = int(start_ms / span_ms * (TIMELINE_WIDTH - 1))
    last = int((end_ms if end_ms is not None else span_ms) / span_ms * (TIMELINE_WIDTH - 1))
    return " " * first + "█" * max(1, last - first + 1) + " " * (TIMELINE_WIDTH - 1 - last)


def _offset(ms: float | None) -> str:
    return "-" if ms is None else f"+{ms:.0f}ms"


def _ms_text(ms: int | None) -> str:
    return "-" if ms is None else f"{ms} ms"


def _bytes_text(size: int | None) -> str:
    if size is None:
        return "-"
    if size < 1024:
        return f"{size}B"
    value = size / 1024
    for unit in ("K", "M"):
        if value < 1024:
            return f"{value:.1f}{unit}"
        value /= 1024
    return f"{value:.1f}G"


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")
