"""Graph algorithms over node ids: cycles and dependency levels."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def find_cycle(ids: Iterable[str], edges: Iterable[tuple[str, str]]) -> list[str] | None:
    """A cycle as `[a, b, c, a]`, or None; ids are visited in the given order."""
    order = list(ids)
    successors: dict[str, list[str]] = {node: [] for node in order}
    for source, target in edges:
        if source in successors and target in successors:
            successors[source].append(target)
    done: set[str] = set()
    for start in order:
        if start in done:
            continue
        cycle = _walk(start, successors, done)
        if cycle:
            return cycle
    return None


def _walk(start: str, successors: Mapping[str, list[str]], done: set[str]) -> list[str] | None:
    """Iterative depth-first search from `start`; returns the first cycle found."""
    path: list[str] = [start]
    on_path = {start}
    stack = [iter(successors[start])]
    while stack:
        following = next(stack[-1], None)
        if following is None:
            finished = path.pop()
            on_path.discard(finished)
            done.add(finished)
            stack.pop()
            continue
        if following in on_path:
            return [*path[path.index(following) :], following]
        if following not in done:
            path.append(following)
            on_path.add(following)
            stack.append(iter(successors[following]))
    return None


def levels(dependencies: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Group nodes by longest distance from a source; a node runs after all its dependencies.

    `dependencies` maps every node to the nodes it waits for; those outside the mapping are
    taken as already done. Order within a level follows the mapping's order. The graph must be
    acyclic (validation guarantees it).
    """
    waits_for = {
        node: [dep for dep in deps if dep in dependencies] for node, deps in dependencies.items()
    }
    dependants: dict[str, list[str]] = {node: [] for node in waits_for}
    for node, deps in waits_for.items():
        for dep in deps:
            dependants[dep].append(node)
    pending = {node: len(deps) for node, deps in waits_for.items()}
    depth = dict.fromkeys(waits_for, 0)
    ready = [node for node, count in pending.items() if count == 0]
    while ready:
        node = ready.pop()
        for dependant in dependants[node]:
            depth[dependant] = max(depth[dependant], depth[node] + 1)
            pending[dependant] -= 1
            if pending[dependant] == 0:
                ready.append(dependant)
    if any(pending.values()):
        raise ValueError("the dependency graph has a cycle")
    result: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for node in waits_for:
        result[depth[node]].append(node)
    return result
