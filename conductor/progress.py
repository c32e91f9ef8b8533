"""Live progress of `conductor run`: a bar weighted by node, and a line per node outcome."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from storage.events import Event, EventType

_DONE = {
    EventType.NODE_SUCCEEDED: "[green]✓[/]",
    EventType.NODE_SKIPPED: "[dim]-[/]",
    EventType.NODE_FAILED: "[red]✗[/]",
    EventType.NODE_CACHED: "[cyan]≡[/]",
}


class ProgressView:
    """Feed it events; it shows how many nodes are done (each node weighs the same, as in
    Atomiton), which are running, and one line per finished, failed or retried node."""

    def __init__(self, console: Console, name: str, nodes: int) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.task = self.progress.add_task(escape(name), total=nodes)
        self.name = name
        self.known: set[str] = set()
        self.running: set[str] = set()
        self.finished: set[str] = set()

    def __call__(self, event: Event) -> None:
        """Apply one event."""
        node = event.node_id
        if node is None:
            return
        if node not in self.known:  # a loop's item nodes appear as they are planned
            self.known.add(node)
            self.progress.update(self.task, total=max(self._total(), len(self.known)))
        if event.type is EventType.NODE_STARTED:
            self.running.add(node)
        elif event.type is EventType.NODE_RETRYING:
            self.running.discard(node)
            delay = event.data.get("retry_in_s", 0)
            message = (event.data.get("error") or {}).get("message", "")
            line = f"{escape(node)}: {escape(str(message))} (retry in {delay:.1f} s)"
            self.progress.console.print(f"[yellow]↻[/] {line}")
        elif event.type in _DONE and node not in self.finished:
            self._finish(event, node)
        self._describe()

    def _finish(self, event: Event, node: str) -> None:
        self.running.discard(node)
        self.finished.add(node)
        self.progress.advance(self.task)
        took = event.data.get("duration_ms")
        detail = f" {took} ms" if took is not None else ""
        error = event.data.get("error")
        if error:
            detail += f" [{error.get('code')}] {error.get('message')}"
        if event.data.get("reason"):  # why a node was skipped
            detail += f" ({event.data['reason']})"
        self.progress.console.print(f"{_DONE[event.type]} {escape(node)}{escape(detail)}")

    def _total(self) -> int:
        return int(self.progress.tasks[0].total or 0)

    def _describe(self) -> str:
        running = sorted(self.running)
        shown = ", ".join(running[:3]) + (f" +{len(running) - 3}" if len(running) > 3 else "")
        description = escape(f"{self.name}: {shown}" if shown else self.name)
        self.progress.update(self.task, description=description)
        return description

    def __enter__(self) -> ProgressView:
        self.progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.progress.stop()
