"""Which nodes a replay --from keeps, and how `history diff` compares outputs (no Redis)."""

from __future__ import annotations

from pathlib import Path

from conductor.compiler import compile_plan
from conductor.history_diff import Change, describe, diff_executions
from conductor.model.loader import load_blueprint_text
from conductor.model.plan import ExecutionPlan
from conductor.replay import reusable
from storage.blobs import FilesystemBlobStore
from storage.events import Event, EventType
from storage.history import HistoryStore, open_history

# a -> b -> c, a -> d (d does not depend on b); group g (g/x -> g/y) fed by b
BLUEPRINT = """
id: shape
name: Shape
nodes:
  - {id: a, type: delay}
  - {id: b, type: delay}
  - {id: c, type: delay}
  - {id: d, type: delay}
  - id: g
    type: group
    nodes:
      - {id: x, type: delay}
      - {id: y, type: delay}
    edges:
      - {source: x, target: y}
edges:
  - {source: a, target: b}
  - {source: b, target: c}
  - {source: a, target: d}
  - {source: b, target: g}
"""


def _plan() -> ExecutionPlan:
    return compile_plan(load_blueprint_text(BLUEPRINT), "e", {})


def _all_recorded() -> dict[str, str]:
    return {key: f'{{"result": "{key}"}}' for key in _plan().nodes}


def test_from_a_node_keeps_what_does_not_depend_on_it() -> None:
    kept = reusable(_plan(), "b", _all_recorded())

    assert sorted(kept) == ["a", "d"]
    assert kept["a"] == '{"result": "a"}'


def test_from_a_group_reruns_its_children_and_keeps_the_rest() -> None:
    assert sorted(reusable(_plan(), "g", _all_recorded())) == ["a", "b", "c", "d"]


def test_from_a_child_reruns_its_group_and_what_follows_in_it() -> None:
    assert sorted(reusable(_plan(), "g/x", _all_recorded())) == ["a", "b", "c", "d"]
    assert sorted(reusable(_plan(), "g/y", _all_recorded())) == ["a", "b", "c", "d", "g/x"]


def test_a_node_with_no_recorded_output_reruns_and_so_does_what_depends_on_it() -> None:
    recorded = _all_recorded()
    del recorded["a"]  # it failed in the original: everything downstream of it runs again

    assert reusable(_plan(), "c", recorded) == {}
    recorded = _all_recorded()
    del recorded["d"]
    assert sorted(reusable(_plan(), "c", recorded)) == ["a", "b", "g", "g/x", "g/y"]


def _record(history: HistoryStore, execution_id: str, outputs: dict[str, str]) -> None:
    queued = Event(
        id=f"{execution_id}-1",
        execution_id=execution_id,
        seq=1,
        type=EventType.EXECUTION_QUEUED,
        ts=1.0,
        data={"blueprint_id": "bp", "blueprint_name": "BP", "inputs": {}, "nodes": 1},
    )
    nodes = [
        Event(
            id=f"{execution_id}-{n}",
            execution_id=execution_id,
            seq=n,
            type=EventType.NODE_SUCCEEDED,
            node_id=key,
            ts=2.0,
            data={"duration_ms": 1},
        )
        for n, key in enumerate(outputs, start=2)
    ]
    history.record([queued, *nodes])
    history.keep_for_replay({}, {execution_id: outputs})


def test_diff_names_each_node_change_and_the_paths_that_differ(tmp_path: Path) -> None:
    history = open_history("sqlite://")
    _record(
        history,
        "A",
        {
            "same": '{"result": 1}',
            "changed": '{"result": {"word": "one", "n": [1, 2]}, "k": true}',
            "gone": '{"result": 0}',
        },
    )
    _record(
        history,
        "B",
        {
            "same": '{"result": 1}',
            "changed": '{"result": {"word": "two", "n": [1, 2, 3]}, "k": 1}',
            "new": '{"result": 0}',
        },
    )

    diff = diff_executions(history, FilesystemBlobStore(tmp_path), "A", "B")

    changes = {node.node_id: node.change for node in diff.nodes}
    assert changes == {
        "same": Change.SAME,
        "changed": Change.CHANGED,
        "gone": Change.REMOVED,
        "new": Change.ADDED,
    }
    changed = next(node for node in diff.nodes if node.node_id == "changed")
    assert changed.paths == ["result.word", "result.n[2]", "k"]  # true vs 1: not the same
    text = "\n".join(describe(diff))
    assert 'result.word: "one" -> "two"' in text
    assert "result.n[2]: - -> 3" in text
    assert "4 node(s): 1 same, 1 changed, 1 added, 1 removed" in text
    history.close()
