"""conductor/model/graph.py: cycle detection and dependency levels."""

from __future__ import annotations

import itertools

import pytest

from conductor.model.graph import find_cycle, levels

CHAIN_LENGTH = 5000


def chain_ids(count: int) -> list[str]:
    """n0000, n0001, ... (sortable ids)."""
    return [f"n{i:04d}" for i in range(count)]


# --- find_cycle ----------------------------------------------------------------------------


def test_no_cycle_in_a_dag() -> None:
    ids = ["a", "b", "c", "d"]
    assert find_cycle(ids, [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")]) is None


def test_no_cycle_without_edges() -> None:
    assert find_cycle(["a", "b"], []) is None
    assert find_cycle([], []) is None


def test_three_node_cycle_is_returned_closed() -> None:
    assert find_cycle(["a", "b", "c"], [("a", "b"), ("b", "c"), ("c", "a")]) == [
        "a",
        "b",
        "c",
        "a",
    ]


def test_cycle_starts_where_it_is_entered_not_at_the_path_root() -> None:
    edges = [("a", "b"), ("b", "c"), ("c", "d"), ("d", "b")]
    assert find_cycle(["a", "b", "c", "d"], edges) == ["b", "c", "d", "b"]


def test_self_loop() -> None:
    assert find_cycle(["a", "b"], [("a", "b"), ("b", "b")]) == ["b", "b"]


def test_two_node_cycle() -> None:
    assert find_cycle(["x", "y"], [("x", "y"), ("y", "x")]) == ["x", "y", "x"]


def test_diamond_revisit_is_not_a_cycle() -> None:
    # d is reached twice through different branches; that must not look like a cycle.
    edges = [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d"), ("d", "e")]
    assert find_cycle(["a", "b", "c", "d", "e"], edges) is None


def test_edges_to_unknown_ids_are_ignored() -> None:
    assert find_cycle(["a", "b"], [("a", "zz"), ("zz", "a"), ("a", "b")]) is None


def test_cycle_in_a_later_component_is_found() -> None:
    ids = ["a", "b", "x", "y"]
    assert find_cycle(ids, [("a", "b"), ("x", "y"), ("y", "x")]) == ["x", "y", "x"]


def test_long_chain_has_no_cycle_and_no_recursion_error() -> None:
    ids = chain_ids(CHAIN_LENGTH)
    assert find_cycle(ids, list(itertools.pairwise(ids))) is None


def test_long_cycle_is_found_without_recursion_error() -> None:
    ids = chain_ids(CHAIN_LENGTH)
    edges = [*itertools.pairwise(ids), (ids[-1], ids[0])]
    cycle = find_cycle(ids, edges)
    assert cycle == [*ids, ids[0]]


# --- levels --------------------------------------------------------------------------------


def test_levels_of_a_linear_chain() -> None:
    assert levels({"a": [], "b": ["a"], "c": ["b"]}) == [["a"], ["b"], ["c"]]


def test_levels_of_a_diamond() -> None:
    deps = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}
    assert levels(deps) == [["a"], ["b", "c"], ["d"]]


def test_a_node_waits_for_its_longest_branch() -> None:
    deps = {"a": [], "b": ["a"], "c": ["b"], "x": [], "y": ["x"], "z": ["c", "y"]}
    assert levels(deps) == [["a", "x"], ["b", "y"], ["c"], ["z"]]


def test_a_shortcut_edge_does_not_pull_a_node_earlier() -> None:
    deps = {"a": [], "b": ["a"], "c": ["a", "b"]}
    assert levels(deps) == [["a"], ["b"], ["c"]]


def test_order_within_a_level_follows_the_mapping() -> None:
    deps = {"z": [], "m": [], "a": [], "end": ["a", "m", "z"]}
    assert levels(deps) == [["z", "m", "a"], ["end"]]


def test_independent_nodes_share_one_level() -> None:
    assert levels({"a": [], "b": [], "c": []}) == [["a", "b", "c"]]


def test_empty_mapping_has_no_levels() -> None:
    assert levels({}) == []


def test_dependencies_outside_the_mapping_count_as_done() -> None:
    # a and b already finished (resume): c and d are what is left.
    deps = {"c": ["a"], "d": ["b", "c"]}
    assert levels(deps) == [["c"], ["d"]]


def test_every_dependency_outside_the_mapping() -> None:
    assert levels({"c": ["a"], "d": ["b"]}) == [["c", "d"]]


def test_every_node_comes_after_all_its_dependencies() -> None:
    deps = {
        "a": [],
        "b": ["a"],
        "c": [],
        "d": ["b", "c"],
        "e": ["a"],
        "f": ["e", "d"],
        "g": ["c"],
    }
    result = levels(deps)
    position = {node: index for index, level in enumerate(result) for node in level}
    assert sorted(position) == sorted(deps)
    for node, node_deps in deps.items():
        for dep in node_deps:
            assert position[dep] < position[node], (dep, node)


def test_levels_of_a_long_chain_without_recursion_error() -> None:
    ids = chain_ids(CHAIN_LENGTH)
    deps = {node: ([ids[i - 1]] if i else []) for i, node in enumerate(ids)}
    result = levels(deps)
    assert len(result) == CHAIN_LENGTH
    assert result[0] == [ids[0]]
    assert result[-1] == [ids[-1]]


def test_levels_refuses_a_cycle() -> None:
    with pytest.raises(ValueError, match="cycle"):
        levels({"a": ["b"], "b": ["a"]})
