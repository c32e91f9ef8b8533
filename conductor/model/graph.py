"""Graph algorithms over node ids: cycles, dependency levels, and the series-parallel
decomposition the canvas is built from (see docs/canvas.md)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import pairwise


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


def first_levels(dependencies: Mapping[str, Iterable[str]], later_nodes: int) -> list[str]:
    """The nodes of the first dependency levels (as `levels` gives them), as many levels as
    keep the nodes after the first level within `later_nodes`; the first level, any width, is
    always taken. Stops walking there: the cost is one pass over the mapping plus the taken."""
    position = {node: index for index, node in enumerate(dependencies)}
    pending: dict[str, int] = {}
    dependants: dict[str, list[str]] = {}
    for node, deps in dependencies.items():
        inside = [dep for dep in dict.fromkeys(deps) if dep in position]
        pending[node] = len(inside)
        for dep in inside:
            dependants.setdefault(dep, []).append(node)
    level = [node for node, count in pending.items() if count == 0]
    taken: list[str] = []
    first = len(level)
    while level:
        if taken and len(taken) - first + len(level) > later_nodes:
            break
        taken += level
        following: list[str] = []
        for node in level:
            for dependant in dependants.get(node, ()):
                pending[dependant] -= 1
                if pending[dependant] == 0:
                    following.append(dependant)
        level = sorted(following, key=position.__getitem__)
    return taken


@dataclass(frozen=True)
class Series:
    """Parts that run one after another: each starts when everything before it is done."""

    parts: tuple[Shape, ...]


@dataclass(frozen=True)
class Parallel:
    """Parts that run side by side, none waiting for another."""

    parts: tuple[Shape, ...]


Shape = str | Series | Parallel  # a node key, or a composition of shapes


def decompose(dependencies: Mapping[str, Iterable[str]]) -> Shape | None:
    """Nodes as nested series and parallel parts in which no node waits for a node it does
    not (transitively) depend on, wherever the graph allows it; None for no nodes.

    Dependencies outside the mapping count as done. A part that is neither series nor
    parallel (an N: `a->c, a->d, b->d`) is cut in two where the fewest (node, needless wait)
    pairs arise; docs/canvas.md says which shapes still wait.
    """
    waits_for = {
        node: [dep for dep in dict.fromkeys(deps) if dep in dependencies]
        for node, deps in dependencies.items()
    }
    order = [node for level in levels(waits_for) for node in level]
    return _decompose(order, waits_for) if order else None


def _decompose(nodes: list[str], waits_for: Mapping[str, list[str]]) -> Shape:
    """`nodes`: a convex set in topological order."""
    if len(nodes) == 1:
        return nodes[0]
    components = _components(nodes, waits_for)
    if len(components) > 1:
        return Parallel(tuple(_decompose(part, waits_for) for part in components))
    ancestors = _ancestors(nodes, waits_for)
    factors = _series_factors(nodes, ancestors) or _least_waiting_cut(nodes, ancestors)
    parts: list[Shape] = []
    for factor in factors:
        shape = _decompose(factor, waits_for)
        parts += shape.parts if isinstance(shape, Series) else [shape]
    return Series(tuple(parts))


def _components(nodes: list[str], waits_for: Mapping[str, list[str]]) -> list[list[str]]:
    """Weakly connected components, each in the given order, ordered by first node."""
    members = set(nodes)
    root = {node: node for node in nodes}

    def find(node: str) -> str:
        while root[node] != node:
            root[node] = root[root[node]]
            node = root[node]
        return node

    for node in nodes:
        for dep in waits_for[node]:
            if dep in members:
                root[find(dep)] = find(node)
    groups: dict[str, list[str]] = {}
    for node in nodes:
        groups.setdefault(find(node), []).append(node)
    return list(groups.values())


def _ancestors(nodes: list[str], waits_for: Mapping[str, list[str]]) -> list[int]:
    """Each node's ancestors within `nodes`, as a bit set of positions in `nodes`."""
    position = {node: index for index, node in enumerate(nodes)}
    ancestors: list[int] = []
    for node in nodes:
        bits = 0
        for dep in waits_for[node]:
            if dep in position:
                bits |= ancestors[position[dep]] | (1 << position[dep])
        ancestors.append(bits)
    return ancestors


def _series_factors(nodes: list[str], ancestors: list[int]) -> list[list[str]] | None:
    """Split where everything before depends on everything after; None when nowhere.

    A cut after position k is such a split when every later node has all of the first k as
    ancestors: `prefix[i]`, the length of the leading run of ancestors of node i, is >= k.
    """
    prefix = [((bits ^ (bits + 1)).bit_length() - 1) for bits in ancestors]
    cuts: list[int] = []
    lowest = len(nodes)
    for k in range(len(nodes) - 1, 0, -1):
        lowest = min(lowest, prefix[k])
        if lowest >= k:
            cuts.append(k)
    if not cuts:
        return None
    bounds = [0, *reversed(cuts), len(nodes)]
    return [nodes[start:end] for start, end in pairwise(bounds)]


def _least_waiting_cut(nodes: list[str], ancestors: list[int]) -> list[list[str]]:
    """Two parts, the first all of some node's ancestors, with the fewest needless waits: pairs
    (a first node of the second part, a node of the first it does not depend on); the later
    nodes' waits follow from those. Ties go to the larger first part."""
    everyone = (1 << len(nodes)) - 1
    best: tuple[int, int] | None = None
    best_cut = 0
    for bits in dict.fromkeys(ancestors):
        if not bits:
            continue
        rest = everyone & ~bits
        firsts = [i for i in _positions(rest) if not ancestors[i] & rest]
        score = (sum((bits & ~ancestors[i]).bit_count() for i in firsts), -bits.bit_count())
        if best is None or score < best:
            best, best_cut = score, bits
    first = [node for index, node in enumerate(nodes) if best_cut >> index & 1]
    return [first, [node for index, node in enumerate(nodes) if not best_cut >> index & 1]]


def _positions(bits: int) -> Iterable[int]:
    index = 0
    while bits:
        if bits & 1:
            yield index
        bits >>= 1
        index += 1
