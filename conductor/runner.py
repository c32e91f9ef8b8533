"""Running one Blueprint in the foreground: load and check it, submit it, follow it to its
result, print that (what `conductor run` and `conductor validate` do)."""

from __future__ import annotations

import json
import sys
import uuid
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from conductor.child_references import ChildReferences
from conductor.control import Control
from conductor.debugger import Debugger, terminal_line
from conductor.exit_codes import EXIT_FAILED, EXIT_INVALID
from conductor.inspection import Inspector
from conductor.model.admission import Admission
from conductor.model.blueprint import Blueprint
from conductor.model.loader import load_blueprint_file
from conductor.model.problems import InvalidBlueprint
from conductor.model.settings import Settings
from conductor.progress import ProgressView
from conductor.recorder import Recorder
from conductor.services import Services
from conductor.signal_hint import SignalHint, waits_for_signals
from conductor.validation import ensure_valid
from conductor.waiting import ExecutionFollower, OnEvent
from nodes.registry import NodeRegistry
from storage.blueprints import open_blueprint_store


def load_valid(path: Path, registry: NodeRegistry, *, strict: bool) -> Blueprint:
    """The Blueprint in `path`, its warnings printed; exit 2 listing every problem."""
    try:
        model = load_blueprint_file(path)
        warnings = ensure_valid(model, registry, strict=strict)
    except InvalidBlueprint as exc:
        print_problems(path, exc)
        sys.exit(EXIT_INVALID)
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    return model


def check_references(path: Path, model: Blueprint, settings: Settings) -> None:
    """Exit 2 when the stored Blueprints its `blueprint` nodes name (in CONDUCTOR_BLUEPRINTS_DIR)
    are missing, cyclic or nested too deep (docs/children.md)."""
    store = open_blueprint_store(settings.blueprints_dir)
    try:
        ChildReferences(lambda: store, settings.max_child_depth).pin(model)
    except InvalidBlueprint as exc:
        print_problems(path, exc)
        sys.exit(EXIT_INVALID)


@dataclass(frozen=True)
class Submission:
    """One `conductor run`: what to submit and how to follow it."""

    model: Blueprint
    inputs: dict[str, Any]
    registry: NodeRegistry
    detach: bool
    timeout_s: float | None
    show_progress: bool
    quiet: bool = False  # --json: nothing on stderr but problems
    admission: Admission = field(default_factory=Admission)  # --priority, --concurrency-key
    breakpoints: tuple[str, ...] = ()  # --break: pause before these, ask what to do
    private_redis: bool = False  # the embedded stack: name its Redis in hints

    def run(self, settings: Settings) -> dict[str, Any]:
        """Submit; unless detached, follow the live events to the result."""
        services = Services.from_settings(settings, registry=self.registry)
        stores, dispatcher = services.stores, services.dispatcher
        execution_id = str(uuid.uuid4())
        hint = waits_for_signals(self.model.nodes) and not self.detach
        live = self.show_progress or bool(self.breakpoints) or hint

        def hinted(on_event: OnEvent | None) -> OnEvent | None:
            if not hint:
                return on_event
            url = settings.redis_url if self.private_redis else None
            return SignalHint(execution_id, partial(click.echo, err=True), url, on_event)

        events = services.backend.event_source()
        with ExecutionFollower(events, execution_id, live=live) as follower:  # before submitting
            plan = dispatcher.submit(
                self.model,
                self.inputs,
                execution_id,
                breakpoints=self.breakpoints,
                admission=self.admission,
            )
            if not (self.quiet or self.detach):
                count = len(plan.nodes)
                click.echo(
                    f"running {self.model.name!r} ({count} node{'s' * (count != 1)}) "
                    f"as {execution_id}",
                    err=True,
                )
            if self.detach:
                return {"id": plan.execution_id, "status": "queued"}
            timeout_s = self.timeout_s
            # (time in a concurrency key's line is not the Blueprint's: no derived limit)
            if timeout_s is None and plan.timeout_ms and plan.concurrency_key is None:
                timeout_s = plan.timeout_ms / 1000 + 5
            if self.breakpoints:
                inspector = Inspector(stores, services.backend.node_outputs())
                echo = partial(click.echo, err=True)
                debugger = Debugger(
                    execution_id, Control(dispatcher), inspector, terminal_line, echo
                )
                return follower.wait(stores, timeout_s, on_event=hinted(debugger))
            if not self.show_progress:
                return follower.wait(stores, timeout_s, on_event=hinted(None))
            console = Console(stderr=True)
            with ProgressView(console, self.model.name, len(plan.nodes)) as view:
                return follower.wait(stores, timeout_s, on_event=hinted(view))


def record_history(settings: Settings) -> None:
    """The embedded stack's recorder: move the run's events into the history store."""
    services = Services.from_settings(settings)
    try:
        Recorder.from_services(services).drain()
    finally:
        services.close()


def print_problems(path: Path, exc: InvalidBlueprint) -> None:
    click.echo(f"{path}: {len(exc.problems)} problem(s)", err=True)
    for problem in exc.problems:
        click.echo(f"  {problem}", err=True)


def end_command(result: dict[str, Any], *, detach: bool, as_json: bool) -> None:
    """How `run` and `replay` end: a detached submission prints its id (or JSON); otherwise
    the result is printed and the exit code says whether the execution succeeded."""
    if detach:
        click.echo(json.dumps(result) if as_json else result["id"])
        return
    print_result(result, as_json)
    sys.exit(0 if result["success"] else EXIT_FAILED)


def print_result(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(result))
        return
    if result["success"]:
        click.echo(f"succeeded in {result['duration_ms']} ms", err=True)
    else:
        error = result.get("error") or {}
        where = f" at node {error['nodeId']}" if error.get("nodeId") else ""
        click.echo(
            f"{result['status']}{where}: [{error.get('code')}] {error.get('message')}", err=True
        )
        click.echo(json.dumps({"error": error}, indent=2, ensure_ascii=False))
        return
    results = {
        node: output.get("result") if isinstance(output, dict) else output
        for node, output in result["data"].items()
    }
    click.echo(json.dumps(results, indent=2, ensure_ascii=False))
