"""The progress view of `conductor run`, fed events as the live channel delivers them."""

from __future__ import annotations

import io

from rich.console import Console

from conductor.progress import ProgressView
from storage.events import Event, EventType


def event(seq: int, kind: EventType, node: str | None, **data: object) -> Event:
    return Event(
        id=f"e{seq}", execution_id="x", seq=seq, type=kind, node_id=node, ts=1.0, data=data
    )


def test_progress_counts_nodes_and_prints_each_outcome() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120, color_system=None)
    with ProgressView(console, "Demo [x]", nodes=2) as view:
        view(event(1, EventType.EXECUTION_STARTED, None))
        view(event(2, EventType.NODE_STARTED, "a", attempt=1))
        assert view.running == {"a"}
        view(event(3, EventType.NODE_SUCCEEDED, "a", duration_ms=4))
        view(event(4, EventType.NODE_STARTED, "loop#0/b", attempt=1))
        view(
            event(
                5,
                EventType.NODE_RETRYING,
                "loop#0/b",
                retry_in_s=1.5,
                error={"message": "[red]boom"},
            )
        )
        view(
            event(
                6, EventType.NODE_FAILED, "loop#0/b", error={"code": "TIMEOUT", "message": "slow"}
            )
        )
        assert view.progress.tasks[0].completed == 2
        assert view.progress.tasks[0].total == 2
        view(event(7, EventType.NODE_SKIPPED, "c", reason="runIf is false: [b]x"))
        assert view.progress.tasks[0].total == 3  # a node the plan did not list (a loop item)
    text = out.getvalue()
    assert "✓ a 4 ms" in text
    assert "↻ loop#0/b: [red]boom (retry in 1.5 s)" in text  # user text is not markup
    assert "✗ loop#0/b [TIMEOUT] slow" in text
    assert "- c (runIf is false: [b]x)" in text
