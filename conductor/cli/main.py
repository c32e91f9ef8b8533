"""The `conductor` command line (CONTRACT section 4): a group that imports each command only
when it runs, and turns environment failures into one line and an exit code, never a
traceback."""

from __future__ import annotations

import importlib
import os
from typing import Any

import click

from conductor.exit_codes import EXIT_INTERRUPTED
from conductor.failures import describe_failure

# name: (module, attribute, one-line help). `--help` reads the help from here, so listing the
# commands imports none of them (Celery, pydantic, the nodes take about a second).
COMMANDS: dict[str, tuple[str, str, str]] = {
    "run": ("conductor.cli.run", "run", "Run a Blueprint file and print its result."),
    "validate": ("conductor.cli.run", "validate", "Check a Blueprint file."),
    "nodes": ("conductor.cli.nodes", "nodes", "List node types with their parameters."),
    "worker": ("conductor.cli.worker", "worker", "Run a Celery worker for node tasks."),
    "api": ("conductor.cli.api", "api", "Serve the HTTP API."),
    "recorder": (
        "conductor.cli.recorder",
        "recorder",
        "Move events from Redis into the execution-history store.",
    ),
    "history": ("conductor.cli.history", "history", "Read the execution-history store."),
    "cancel": ("conductor.cli.control", "cancel", "Cancel an execution."),
    "pause": ("conductor.cli.control", "pause", "Pause an execution."),
    "resume": ("conductor.cli.control", "resume", "Resume a paused execution."),
    "retry": ("conductor.cli.control", "retry", "Retry a failed or cancelled execution."),
    "replay": (
        "conductor.cli.replay",
        "replay",
        "Run a finished execution again from its recorded Blueprint and inputs.",
    ),
    "step": ("conductor.cli.control", "step", "Run a paused execution's next node(s)."),
    "inspect": ("conductor.cli.inspect_node", "inspect", "Show a node's inputs and state."),
    "flower": ("conductor.cli.flower", "flower", "Serve Flower for the workers."),
    "dev": ("conductor.cli.dev", "dev", "Run the whole stack as local processes."),
    "beat": ("conductor.cli.beat", "beat", "Run Celery beat: fire the schedules."),
    "schedule": ("conductor.cli.schedule", "schedule", "Add, list, pause, remove schedules."),
    "hook": ("conductor.cli.hook", "hook", "Add, list, remove webhook triggers."),
    "signal": ("conductor.cli.signal", "signal", "Send a signal to a waiting execution."),
    "blobs": ("conductor.cli.blobs", "blobs", "Collect blobs nothing refers to any more."),
}


class LazyGroup(click.Group):
    """Commands imported on first use; failures of the environment mapped to exit codes."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attribute, _ = COMMANDS[cmd_name]
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, short) for name, (_, _, short) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            if os.environ.get("CONDUCTOR_DEBUG"):
                raise
            message, code = describe_failure(exc)
            click.echo(f"error: {message}", err=True)
            ctx.exit(code)


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Exit codes: 0 success, 1 the execution failed, 2 invalid input or usage, "
    "3 a service (Redis, the history store, a port) is not reachable, 130 interrupted.",
)
@click.version_option(package_name="conductor", prog_name="conductor")
def main() -> None:
    """Conductor runs Atomiton Blueprints on Celery workers over Redis.

    Without CONDUCTOR_REDIS_URL, `conductor run` starts a private Redis and worker for the run.
    """
