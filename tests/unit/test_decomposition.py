"""conductor.model.graph.decompose: nested series and parallel parts in which a node waits only
for what it depends on, whenever the graph is series-parallel; a sound cut otherwise."""

from __future__ import annotations

import random

import pytest

from conductor.model.graph import Parallel, Series, Shape, decompose, first_levels, levels


def waits(shape: Shape, before: frozenset[str] = frozenset()) -> dict[str, frozenset[str]]:
    """Each node with the nodes that finish before it starts."""
    if isinstance(shape, str):
        return {shape: before}
    found: dict[str, frozenset[str]] = {}
    for part in shape.parts:
        inner = waits(part, before)
        found |= inner
        if isinstance(shape, Series):
            before = before | set(inner)
    return found


def ancestors(deps: dict[str, list[str]], node: str) -> set[str]:
    found: set[str] = set()
    pending = list(deps[node])
    while pending:
        dep = pending.pop()
        if dep in deps and dep not in found:
            found.add(dep)
            pending += deps[dep]
    return found


def series_parallel(rng: random.Random, names: list[str], depth: int = 0) -> dict[str, list[str]]:
    """A random series-parallel DAG over `names` (edges only between consecutive parts)."""
    if len(names) == 1 or depth > 4:
        return {name: [] for name in names}
    cut = rng.randint(1, len(names) - 1)
    left = series_parallel(rng, names[:cut], depth + 1)
    right = series_parallel(rng, names[cut:], depth + 1)
    if rng.random() < 0.5:
        return {**left, **right}
    sinks = [n for n in left if not any(n in deps for deps in left.values())]
    sources = [n for n, deps in right.items() if not deps]
    return {**left, **{n: [*deps, *(sinks if n in sources else [])] for n, deps in right.items()}}


def test_the_uneven_shape_is_a_group_of_a_chain_and_a_node_then_the_join() -> None:
    deps = {"a1": [], "a2": ["a1"], "a3": ["a2"], "b1": [], "join": ["a3", "b1"]}
    assert decompose(deps) == Series((Parallel((Series(("a1", "a2", "a3")), "b1")), "join"))


def test_a_complete_bipartite_step_is_two_groups() -> None:
    deps = {"a": [], "b": [], "c": ["a", "b"], "d": ["a", "b"]}
    assert decompose(deps) == Series((Parallel(("a", "b")), Parallel(("c", "d"))))


def test_a_cross_linked_ladder_is_cut_into_rungs() -> None:
    """p_i -> p_i+1, q_i -> q_i+1 and p_i -> q_i+1: not series-parallel; each rung a group."""
    deps: dict[str, list[str]] = {"p1": [], "q1": []}
    for n in range(2, 5):
        deps[f"p{n}"] = [f"p{n - 1}"]
        deps[f"q{n}"] = [f"q{n - 1}", f"p{n - 1}"]
    rungs = tuple(Parallel((f"p{n}", f"q{n}")) for n in range(1, 5))
    assert decompose(deps) == Series(rungs)


def test_dependencies_outside_the_mapping_count_as_done() -> None:
    assert decompose({"c": ["a"], "d": ["b"]}) == Parallel(("c", "d"))
    assert decompose({}) is None


@pytest.mark.parametrize("seed", range(40))
def test_series_parallel_graphs_wait_for_nothing_needless(seed: int) -> None:
    rng = random.Random(seed)
    deps = series_parallel(rng, [f"n{i}" for i in range(rng.randint(2, 30))])
    shape = decompose(deps)
    assert shape is not None
    found = waits(shape)
    assert sorted(found) == sorted(deps)
    for node, before in found.items():
        assert before <= ancestors(deps, node), node


@pytest.mark.parametrize("seed", range(40))
def test_any_graph_runs_each_node_once_after_its_dependencies(seed: int) -> None:
    rng = random.Random(seed)
    names = [f"n{i}" for i in range(rng.randint(2, 40))]
    deps = {
        name: [dep for dep in names[:index] if rng.random() < 0.15]
        for index, name in enumerate(names)
    }
    shape = decompose(deps)
    assert shape is not None
    found = waits(shape)
    assert sorted(found) == sorted(deps)
    for node, before in found.items():
        assert set(deps[node]) <= before, node


@pytest.mark.parametrize("seed", range(20))
def test_first_levels_are_the_first_of_levels(seed: int) -> None:
    rng = random.Random(seed)
    names = [f"n{i}" for i in range(rng.randint(1, 60))]
    deps = {
        name: [dep for dep in names[:index] if rng.random() < 0.1]
        for index, name in enumerate(names)
    }
    rng.shuffle(names)
    deps = {name: deps[name] for name in names}
    limit = rng.randint(0, 30)
    expected: list[str] = []
    for depth, level in enumerate(levels(deps)):
        if depth and len(expected) - len(levels(deps)[0]) + len(level) > limit:
            break
        expected += level
    assert first_levels(deps, limit) == expected
