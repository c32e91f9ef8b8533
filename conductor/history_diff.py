"""`history diff A B`: how two recorded executions' node outputs differ, node by node."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from storage.blobs import BlobStore, unpack
from storage.history import ExecutionRecord, HistoryStore

MAX_PATHS = 20  # changed paths listed per node; more are summed up as "..."


class Change(StrEnum):
    """How a node's output differs from A to B."""

    SAME = "same"
    CHANGED = "changed"
    ADDED = "added"  # only B has an output
    REMOVED = "removed"  # only A has one


class NodeDiff(BaseModel):
    """One node: its change, statuses, the JSON paths that differ and both outputs (those are
    left out when the same)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    node_id: str
    change: Change
    a_status: str | None = None
    b_status: str | None = None
    paths: list[str] = Field(default_factory=list)
    a: Any = None
    b: Any = None


class ExecutionSide(BaseModel):
    """One of the two executions compared."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    status: str
    replay_of: str | None = None


class HistoryDiff(BaseModel):
    """Two executions' per-node output differences, in node order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    a: ExecutionSide
    b: ExecutionSide
    nodes: list[NodeDiff]

    @property
    def counts(self) -> dict[str, int]:
        """How many nodes of each change."""
        counts = dict.fromkeys((change.value for change in Change), 0)
        for node in self.nodes:
            counts[node.change.value] += 1
        return counts


class UnknownExecution(LookupError):
    """History holds no execution with this id."""


def diff_executions(history: HistoryStore, blobs: BlobStore, a_id: str, b_id: str) -> HistoryDiff:
    """Compare the recorded outputs of executions `a_id` and `b_id`."""
    records = [_record(history, execution_id) for execution_id in (a_id, b_id)]
    outputs = [_outputs(history, blobs, execution_id) for execution_id in (a_id, b_id)]
    statuses = [
        {run.node_id: run.status.value for run in history.node_runs(execution_id)}
        for execution_id in (a_id, b_id)
    ]
    order = list(dict.fromkeys([*statuses[0], *statuses[1], *outputs[0], *outputs[1]]))
    nodes = [
        _node(key, statuses[0].get(key), statuses[1].get(key), outputs[0], outputs[1])
        for key in order
    ]
    a, b = (ExecutionSide(id=r.id, status=r.status.value, replay_of=r.replay_of) for r in records)
    return HistoryDiff(a=a, b=b, nodes=nodes)


def _record(history: HistoryStore, execution_id: str) -> ExecutionRecord:
    record = history.execution(execution_id)
    if record is None:
        raise UnknownExecution(f"no execution {execution_id!r} in the history store")
    return record


def _outputs(history: HistoryStore, blobs: BlobStore, execution_id: str) -> dict[str, Any]:
    found = {}
    for key, text in history.node_outputs(execution_id).items():
        try:
            found[key] = unpack(text, blobs)
        except (OSError, ValueError):  # a blob gone or unreadable: compare its reference
            found[key] = json.loads(text)
    return found


def _node(
    key: str,
    a_status: str | None,
    b_status: str | None,
    a_outputs: dict[str, Any],
    b_outputs: dict[str, Any],
) -> NodeDiff:
    if key not in b_outputs:
        change = Change.REMOVED if key in a_outputs else Change.SAME
        if change is Change.SAME and a_status != b_status:
            change = Change.CHANGED
        return NodeDiff(
            node_id=key, change=change, a=a_outputs.get(key), a_status=a_status, b_status=b_status
        )
    if key not in a_outputs:
        return NodeDiff(
            node_id=key, change=Change.ADDED, b=b_outputs[key], a_status=a_status, b_status=b_status
        )
    a, b = a_outputs[key], b_outputs[key]
    paths = [path_text(path) for path in _paths(a, b)]
    if not paths and a_status == b_status:
        return NodeDiff(node_id=key, change=Change.SAME, a_status=a_status, b_status=b_status)
    if len(paths) > MAX_PATHS:
        paths = [*paths[:MAX_PATHS], f"... {len(paths) - MAX_PATHS} more"]
    return NodeDiff(
        node_id=key,
        change=Change.CHANGED,
        paths=paths,
        a=a,
        b=b,
        a_status=a_status,
        b_status=b_status,
    )


Path = tuple[str | int, ...]


def _paths(a: Any, b: Any, path: Path = ()) -> Iterator[Path]:
    """The paths (keys and indexes) at which `a` and `b` differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        for name in dict.fromkeys([*a, *b]):
            if name not in a or name not in b:
                yield (*path, name)
            else:
                yield from _paths(a[name], b[name], (*path, name))
    elif isinstance(a, list) and isinstance(b, list):
        for index in range(max(len(a), len(b))):
            if index >= len(a) or index >= len(b):
                yield (*path, index)
            else:
                yield from _paths(a[index], b[index], (*path, index))
    elif a != b or type(a) is not type(b):
        yield path


def path_text(path: Path) -> str:
    """`result.items[2].name`; `$` for the whole output."""
    text = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path)
    return text.removeprefix(".") or "$"


def describe(diff: HistoryDiff, width: int = 60) -> list[str]:
    """The human view: a header, a row per node, the changed paths, and a count."""
    lines = [
        f"A {diff.a.id} ({diff.a.status})  ->  B {diff.b.id} ({diff.b.status}"
        + (f", replay of {diff.b.replay_of}" if diff.b.replay_of else "")
        + ")"
    ]
    for node in diff.nodes:
        status = ""
        if node.a_status != node.b_status:
            status = f"  status {node.a_status or '-'} -> {node.b_status or '-'}"
        lines.append(f"  {node.change.value:<8} {node.node_id}{status}")
        if node.change is Change.CHANGED:
            changed = list(itertools.islice(_paths(node.a, node.b), MAX_PATHS))
            lines.extend(
                f"      {path_text(p)}: {_at(node.a, p, width)} -> {_at(node.b, p, width)}"
                for p in changed
            )
    counts = ", ".join(f"{count} {name}" for name, count in diff.counts.items() if count)
    lines.append(f"{len(diff.nodes)} node(s): {counts or 'none'}")
    return lines


def _at(value: Any, path: Path, width: int) -> str:
    """The value at `path` (`-` where it is missing), shortened."""
    for part in path:
        try:
            value = value[part]
        except (KeyError, IndexError, TypeError):
            return "-"
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 3] + "..."
