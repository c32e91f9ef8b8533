"""The critical path of a recorded execution: the chain of node runs that decided its end.

From the run that finished last, step back to the node it waited for (its recorded
`depends_on`) that finished last, until a run that waited for none. Each step is the input
that arrived last, so shortening any run off this chain would not end the execution sooner.
"""

from __future__ import annotations

from collections.abc import Sequence

from storage.history import NodeRunRecord


def critical_path(runs: Sequence[NodeRunRecord]) -> list[str]:
    """Node ids on the critical path, first to last; empty when no run finished."""
    finished = {run.node_id: run for run in runs if run.finished_at is not None}
    if not finished:
        return []
    current = max(finished.values(), key=lambda run: (run.finished_at or 0.0, run.node_id))
    path = [current.node_id]
    while True:
        waited = [finished[key] for key in current.depends_on or [] if key in finished]
        if not waited:
            break
        current = max(waited, key=lambda run: (run.finished_at or 0.0, run.node_id))
        if current.node_id in path:  # pragma: no cover - recorded dependencies have no cycle
            break
        path.append(current.node_id)
    return path[::-1]
