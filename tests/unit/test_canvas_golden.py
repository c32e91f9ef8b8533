"""conductor/canvas.py: golden tests of the Celery canvas built for a plan.

The canvas is normalized to a small JSON shape: a node task is its key, parts that run side
by side are `{"group": [...]}`, parts one after another `{"chain": [...]}` (nested as deep as
the graph needs), and the task that sends the next segment `{"continue": left}`. Run with
UPDATE_GOLDEN=1 to rewrite tests/golden/*.json, then read the diff.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from celery.canvas import Signature, chain, group

from conductor.canvas import build_canvas
from conductor.compiler import compile_plan
from conductor.model.blueprint import Blueprint
from conductor.model.plan import ExecutionPlan
from conductor.model.settings import HARD_LIMIT_MARGIN_S
from tests.unit.blueprints import blueprint, chain_edges, edge, node
from tests.unit.blueprints import group as group_node
from workers.signatures import (
    BARRIER_TASK,
    CONTINUE_TASK,
    NODE_TASK,
    SEGMENT_NODES,
    SOFT_LIMIT_MARGIN_S,
)

GOLDEN_DIR = Path(__file__).parents[1] / "golden"
EXECUTION_ID = "exec-canvas"
FAN_WIDTH = 40


def workers(count: int) -> list[str]:
    """w01, w02, ... (sortable ids)."""
    return [f"w{i:02d}" for i in range(1, count + 1)]


# --- the Blueprints --------------------------------------------------------------------------


def linear() -> Blueprint:
    return blueprint(
        [node("a"), node("b", timeout=5000), {**node("c"), "queue": "io"}],
        chain_edges("a", "b", "c"),
    )


def diamond() -> Blueprint:
    return blueprint(
        [node("a"), node("b"), node("c"), node("d")],
        [edge("a", "b"), edge("a", "c"), edge("b", "d"), edge("c", "d")],
    )


def fan_out_fan_in() -> Blueprint:
    middle = workers(FAN_WIDTH)
    return blueprint(
        [node("src"), *(node(w) for w in middle), node("sink")],
        [*(edge("src", w) for w in middle), *(edge(w, "sink") for w in middle)],
    )


def two_multi_node_levels() -> Blueprint:
    return blueprint(
        [node("a"), node("b"), node("c"), node("d")],
        [edge("a", "c"), edge("b", "d"), edge("a", "d")],
    )


def unequal_branches() -> Blueprint:
    return blueprint(
        [node("a"), node("b"), node("c"), node("d"), node("x"), node("y"), node("z")],
        [*chain_edges("a", "b", "c", "d"), edge("x", "y"), edge("d", "z"), edge("y", "z")],
    )


def nested_five_deep() -> Blueprint:
    inner: dict[str, Any] = node("leaf")
    for name in ("g5", "g4", "g3", "g2", "g1"):
        inner = group_node(name, [inner])
    return blueprint([node("start"), inner, node("end")], chain_edges("start", "g1", "end"))


def uneven() -> Blueprint:
    """a1 -> a2 -> a3 beside b1, both into join: b1 must not wait for a1 or a2."""
    return blueprint(
        [node("a1"), node("a2"), node("a3"), node("b1"), node("join")],
        [*chain_edges("a1", "a2", "a3", "join"), edge("b1", "join")],
    )


def ladder() -> Blueprint:
    """Two 4-node pipelines into one join."""
    ids = [f"{side}{n}" for side in "pq" for n in range(1, 5)]
    return blueprint(
        [*(node(key) for key in ids), node("join")],
        [
            *chain_edges("p1", "p2", "p3", "p4", "join"),
            *chain_edges("q1", "q2", "q3", "q4", "join"),
        ],
    )


def n_shape() -> Blueprint:
    """a -> c, a -> d, b -> d: not series-parallel (docs/canvas.md)."""
    return blueprint(
        [node("a"), node("b"), node("c"), node("d")],
        [edge("a", "c"), edge("a", "d"), edge("b", "d")],
    )


def wide_fan_in() -> Blueprint:
    """Branches of 1 to 5 nodes into one join."""
    branches = [[f"b{b}n{n}" for n in range(1, b + 1)] for b in range(1, 6)]
    return blueprint(
        [*(node(key) for branch in branches for key in branch), node("join")],
        [edge for branch in branches for edge in chain_edges(*branch, "join")],
    )


def nested_groups() -> Blueprint:
    """start -> group g (x -> inner group h (y, z), beside w) -> end, beside a lone side node."""
    inner = group_node("h", [node("y"), node("z")])
    outer = group_node("g", [node("x"), inner, node("w")], [edge("x", "h")])
    return blueprint(
        [node("start"), outer, node("end"), node("side")], chain_edges("start", "g", "end")
    )


def forked_branch() -> Blueprint:
    """x -> (y, z) beside w, all into join: the branch ending in a group is closed by a
    barrier task (a chord joining a group's result would wait for results nodes never store)."""
    return blueprint(
        [node("x"), node("y"), node("z"), node("w"), node("join")],
        [edge("x", "y"), edge("x", "z"), edge("y", "join"), edge("z", "join"), edge("w", "join")],
    )


def long_chain() -> Blueprint:
    """More nodes than one segment holds."""
    ids = [f"n{index:03d}" for index in range(SEGMENT_NODES + 5)]
    return blueprint([node(key) for key in ids], chain_edges(*ids))


def single_node() -> Blueprint:
    return blueprint([node("only")])


def single_level() -> Blueprint:
    return blueprint([node("a"), node("b"), node("c")])


CASES: dict[str, tuple[Callable[[], Blueprint], frozenset[str]]] = {
    "linear": (linear, frozenset()),
    "diamond": (diamond, frozenset()),
    "fan_out_fan_in": (fan_out_fan_in, frozenset()),
    "two_multi_node_levels": (two_multi_node_levels, frozenset()),
    "unequal_branches": (unequal_branches, frozenset()),
    "nested_five_deep": (nested_five_deep, frozenset()),
    "single_node": (single_node, frozenset()),
    "single_level": (single_level, frozenset()),
    "uneven": (uneven, frozenset()),
    "ladder": (ladder, frozenset()),
    "n_shape": (n_shape, frozenset()),
    "wide_fan_in": (wide_fan_in, frozenset()),
    "nested_groups": (nested_groups, frozenset()),
    "forked_branch": (forked_branch, frozenset()),
    "long_chain": (long_chain, frozenset()),
    "resume_long_chain": (long_chain, frozenset({"n000", "n001", "n002"})),
    "resume_uneven": (uneven, frozenset({"a1", "b1"})),
    "resume_diamond": (diamond, frozenset({"a", "b"})),
    "resume_fan_out": (fan_out_fan_in, frozenset({"src", *workers(FAN_WIDTH - 2)})),
    "resume_nested": (nested_five_deep, frozenset({"start", "g1/g2/g3/g4/g5/leaf"})),
}


# --- normalizing a canvas --------------------------------------------------------------------


def check_node_signature(signature: Signature[Any], plan: ExecutionPlan) -> str:
    """Assert what every node task must carry; return its node key."""
    assert type(signature) is Signature, f"a node task must be a plain signature: {signature!r}"
    assert signature.task == NODE_TASK
    assert signature.immutable is True, "nodes read inputs from storage, not from the parent"
    execution_id, key = signature.args
    assert execution_id == plan.execution_id
    planned = plan.nodes[key]
    assert signature.kwargs == {"node_type": planned.type}
    timeout_s = planned.timeout_ms() / 1000
    options = signature.options
    if timeout_s != 30:  # the default timeout's limits are the worker's defaults
        assert options["soft_time_limit"] == timeout_s + SOFT_LIMIT_MARGIN_S
        assert options["time_limit"] == timeout_s + HARD_LIMIT_MARGIN_S
    else:
        assert "time_limit" not in options and "soft_time_limit" not in options
    assert options.get("queue") == planned.queue
    assert "link_error" not in options  # a hard-limit kill is handled by the task's on_failure
    return str(key)


def canvas_shape(canvas: Signature[Any] | None, plan: ExecutionPlan) -> Any:
    """The canvas as plain JSON data."""
    if canvas is None:
        return None
    if isinstance(canvas, chain):
        assert len(canvas.tasks) >= 2, "a single step must not be wrapped in a chain"
        steps = [canvas_shape(step, plan) for step in canvas.tasks]
        assert not any(isinstance(step, dict) and "chain" in step for step in steps)
        return {"chain": steps}
    if isinstance(canvas, group):
        assert len(canvas.tasks) >= 2, "a single part must be a plain task, not a group"
        parts = [canvas_shape(part, plan) for part in canvas.tasks]
        assert not any(isinstance(part, dict) and "group" in part for part in parts)
        return {"group": parts}
    if canvas.task == BARRIER_TASK:
        assert canvas.args == () and canvas.immutable is True
        return {"barrier": None}
    if canvas.task == CONTINUE_TASK:
        assert canvas.args == (plan.execution_id,) and canvas.immutable is True
        return {"continue": canvas.kwargs["left"]}
    return check_node_signature(canvas, plan)


def waits_of(shape: Any, before: frozenset[str] = frozenset()) -> dict[str, frozenset[str]]:
    """Each node key of a normalized canvas, with the keys that finish before it starts."""
    if isinstance(shape, str):
        return {shape: before}
    if "continue" in shape or "barrier" in shape:
        return {}
    waits: dict[str, frozenset[str]] = {}
    for part in shape.get("chain", []):
        waits |= waits_of(part, before)
        before = before | {key for key in waits}
    for part in shape.get("group", []):
        waits |= waits_of(part, before)
    return waits


def ancestors_of(plan: ExecutionPlan, key: str) -> set[str]:
    """Every node `key` depends on, directly or not."""
    found: set[str] = set()
    pending = list(plan.nodes[key].depends_on)
    while pending:
        dep = pending.pop()
        if dep in plan.nodes and dep not in found:
            found.add(dep)
            pending += plan.nodes[dep].depends_on
    return found


def compare_golden(name: str, shape: Any) -> None:
    """Compare with tests/golden/<name>.json (UPDATE_GOLDEN=1 rewrites it)."""
    path = GOLDEN_DIR / f"{name}.json"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(shape, indent=2) + "\n", encoding="utf-8")
        return
    assert path.exists(), f"{path} is missing; run with UPDATE_GOLDEN=1 to create it"
    expected = json.loads(path.read_text(encoding="utf-8"))
    assert shape == expected, f"canvas differs from {path}"


def plan_of(model: Blueprint) -> ExecutionPlan:
    """The plan of `model` for the test execution."""
    return compile_plan(model, EXECUTION_ID, {})


# --- the tests -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CASES))
def test_canvas_matches_golden(name: str, celery_app: Celery) -> None:
    make, done = CASES[name]
    plan = plan_of(make())
    shape = canvas_shape(build_canvas(celery_app, plan, done), plan)
    compare_golden(name, shape)


@pytest.mark.parametrize("name", sorted(CASES))
def test_canvas_runs_each_remaining_node_once_after_its_dependencies(
    name: str, celery_app: Celery
) -> None:
    make, done = CASES[name]
    plan = plan_of(make())
    shape = canvas_shape(build_canvas(celery_app, plan, done), plan)
    waits = waits_of(shape)
    last = shape["chain"][-1] if isinstance(shape, dict) and "chain" in shape else None
    if isinstance(last, dict) and "continue" in last:  # the first levels, then the rest
        assert last == {"continue": len(plan.nodes) - len(done)}
        assert len(waits) == SEGMENT_NODES + 1
        assert name.endswith("long_chain")
    else:
        assert sorted(waits) == sorted(set(plan.nodes) - done)
    for key, before in waits.items():
        assert set(plan.nodes[key].depends_on) - done <= before, key


@pytest.mark.parametrize("name", sorted(set(CASES) - {"n_shape", "two_multi_node_levels"}))
def test_no_node_waits_for_a_node_it_does_not_depend_on(name: str, celery_app: Celery) -> None:
    """Every shape but the N (not series-parallel) waits for nothing it does not need."""
    make, done = CASES[name]
    plan = plan_of(make())
    for key, before in waits_of(canvas_shape(build_canvas(celery_app, plan, done), plan)).items():
        assert before <= ancestors_of(plan, key), (
            f"{key} waits for {before - ancestors_of(plan, key)}"
        )


def test_the_n_shape_adds_one_needless_wait(celery_app: Celery) -> None:
    """docs/canvas.md: cut where the fewest waits arise; here c waits for b."""
    plan = plan_of(n_shape())
    waits = waits_of(canvas_shape(build_canvas(celery_app, plan), plan))
    needless = {key: before - ancestors_of(plan, key) for key, before in waits.items()}
    assert sum(len(extra) for extra in needless.values()) == 1


def test_golden_files_have_no_strays() -> None:
    if os.environ.get("UPDATE_GOLDEN") == "1":
        pytest.skip("golden files are being rewritten")
    assert sorted(p.stem for p in GOLDEN_DIR.glob("*.json")) == sorted(CASES)


def test_nothing_left_to_run_is_no_canvas(celery_app: Celery) -> None:
    plan = plan_of(diamond())
    assert build_canvas(celery_app, plan, set(plan.nodes)) is None


def test_one_node_left_is_a_plain_task(celery_app: Celery) -> None:
    plan = plan_of(diamond())
    canvas = build_canvas(celery_app, plan, {"a", "b", "c"})
    assert canvas is not None
    assert check_node_signature(canvas, plan) == "d"


def test_time_limits_follow_each_nodes_timeout(celery_app: Celery) -> None:
    plan = plan_of(linear())
    canvas = build_canvas(celery_app, plan)
    assert isinstance(canvas, chain)
    by_key = {step.args[1]: step for step in canvas.tasks}
    config = celery_app.conf
    assert config.task_soft_time_limit == 30 + SOFT_LIMIT_MARGIN_S  # the default timeout's
    assert config.task_time_limit == 30 + HARD_LIMIT_MARGIN_S
    assert "time_limit" not in by_key["a"].options
    assert by_key["b"].options["soft_time_limit"] == 5 + SOFT_LIMIT_MARGIN_S
    assert by_key["b"].options["time_limit"] == 5 + HARD_LIMIT_MARGIN_S
    assert by_key["c"].options["queue"] == "io"
    assert "queue" not in by_key["a"].options


def test_done_accepts_any_collection(celery_app: Celery) -> None:
    plan = plan_of(diamond())
    done: Collection[str] = ["a", "b"]
    shape = canvas_shape(build_canvas(celery_app, plan, done), plan)
    assert shape == {"chain": ["c", "d"]}
