"""conductor/canvas.py: golden tests of the Celery canvas built for a plan.

The canvas is normalized to a small JSON shape: a node task is its key, a level of several
nodes is `{"group": [...]}` and a sequence of levels is `{"chain": [...]}`. Run with
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
from workers.signatures import NODE_TASK, SOFT_LIMIT_MARGIN_S

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


def level_shape(step: Signature[Any], plan: ExecutionPlan) -> Any:
    """A level: one node key, or {"group": [keys]} for two nodes or more."""
    if isinstance(step, group):
        assert len(step.tasks) >= 2, "a single-node level must be a plain task, not a group"
        return {"group": [check_node_signature(task, plan) for task in step.tasks]}
    return check_node_signature(step, plan)


def canvas_shape(canvas: Signature[Any] | None, plan: ExecutionPlan) -> Any:
    """The canvas as plain JSON data."""
    if canvas is None:
        return None
    if isinstance(canvas, chain):
        assert len(canvas.tasks) >= 2, "a single level must not be wrapped in a chain"
        return {"chain": [level_shape(step, plan) for step in canvas.tasks]}
    return level_shape(canvas, plan)


def levels_of(shape: Any) -> list[list[str]]:
    """The node keys of a normalized canvas, level by level."""
    steps = shape["chain"] if isinstance(shape, dict) and "chain" in shape else [shape]
    return [step["group"] if isinstance(step, dict) else [step] for step in steps]


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
    order = levels_of(shape)
    keys = [key for level in order for key in level]
    assert sorted(keys) == sorted(set(plan.nodes) - done)
    position = {key: index for index, level in enumerate(order) for key in level}
    for key in keys:
        for dependency in plan.nodes[key].depends_on:
            if dependency not in done:
                assert position[dependency] < position[key], (dependency, key)


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
