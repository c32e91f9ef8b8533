"""`conductor run --break`: at each pause before a node, show the node and its inputs, then
read what to do from the terminal (step, continue, inspect, quit)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

from conductor.cli.inspect_node import describe
from conductor.control import Control
from conductor.inspection import Inspector, NodeNotFound
from storage.events import Event, EventType

HELP = "step (s), continue (c), inspect [NODE] (i), quit (q)"


class Detached(Exception):
    """The user quit the debugger: the execution stays paused (or is cancelled when its Redis
    stops with the run)."""


@dataclass(frozen=True)
class Debugger:
    """Answers each `execution.paused` at a breakpoint with the user's command."""

    execution_id: str
    control: Control
    inspector: Inspector
    read_line: Callable[[], str | None]  # None at the end of input
    echo: Callable[[str], None]

    def __call__(self, event: Event) -> None:
        """Act on one live event: only a pause before a node asks for a command."""
        if event.type is not EventType.EXECUTION_PAUSED or "breakpoint" not in event.data:
            return
        node = str(event.data["breakpoint"])
        self.echo(f"paused before {node}: {HELP}")
        self._show(node)
        while True:
            line = self.read_line()
            command, _, argument = (line or "quit").strip().partition(" ")
            if command in ("s", "step"):
                self.control.step(self.execution_id)
                return
            if command in ("c", "continue"):
                self.control.resume(self.execution_id)
                return
            if command in ("q", "quit"):
                raise Detached(self.execution_id)
            if command in ("i", "inspect"):
                self._show(argument.strip() or node)
            else:
                self.echo(f"unknown command {command!r}: {HELP}")

    def _show(self, node: str) -> None:
        try:
            self.echo(describe(self.inspector.node(self.execution_id, node)))
        except NodeNotFound as exc:
            self.echo(str(exc))


def terminal_line() -> str | None:
    """One line from stdin, None at its end."""
    return sys.stdin.readline() or None
