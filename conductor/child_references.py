"""Resolving `blueprint` nodes at submit (docs/children.md): every stored Blueprint they name,
recursively, must exist at the revision asked for, with no reference cycle and no deeper
nesting than CONDUCTOR_MAX_CHILD_DEPTH; a reference without a revision is pinned to the latest
one, so the plan records what runs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from conductor.model.blueprint import Blueprint, BlueprintNode
from conductor.model.children import BLUEPRINT_TYPE, DEFAULT_MAX_CHILD_DEPTH
from conductor.model.problems import ErrorCode, InvalidBlueprint, Problem, join_path
from storage.blueprint_records import BlueprintNotFound, BlueprintStore, StoredBlueprint
from storage.state import StateStore

Path = tuple[str | int, ...]
MAX_ANCESTORS = 1000  # a chain of parents is never longer; this only bounds the walk


@dataclass
class ChildReferences:
    """Checks and pins the stored Blueprints a Blueprint's `blueprint` nodes run."""

    store: Callable[[], BlueprintStore]  # opened on first use
    max_depth: int = DEFAULT_MAX_CHILD_DEPTH

    def pin(self, blueprint: Blueprint, ancestors: Sequence[str] = ()) -> Blueprint:
        """`blueprint` with every reference's revision pinned; InvalidBlueprint naming the
        field and the chain of Blueprints when one is missing, cyclic or too deep.
        `ancestors`: the Blueprint ids of the executions above this one (a child's)."""
        if not _references(blueprint.nodes):
            return blueprint
        chain = (*ancestors, blueprint.id)
        problems: list[Problem] = []
        nodes = self._pin_nodes(blueprint.nodes, (), chain, problems)
        if problems:
            raise InvalidBlueprint(problems)
        return blueprint.model_copy(update={"nodes": nodes})

    def _pin_nodes(
        self, nodes: list[BlueprintNode], at: Path, chain: tuple[str, ...], out: list[Problem]
    ) -> list[BlueprintNode]:
        pinned = []
        for index, node in enumerate(nodes):
            node_at = (*at, "nodes", index)
            update: dict[str, Any] = {}
            if node.nodes:
                update["nodes"] = self._pin_nodes(node.nodes, node_at, chain, out)
            if node.type == BLUEPRINT_TYPE:
                revision = self._check(node, node_at, chain, out)
                if revision is not None:
                    update["parameters"] = {**node.parameters, "revision": revision}
            pinned.append(node.model_copy(update=update) if update else node)
        return pinned

    def _check(
        self, node: BlueprintNode, at: Path, chain: tuple[str, ...], out: list[Problem]
    ) -> int | None:
        """The revision `node` runs, after checking what it names, recursively."""
        target, revision = node.parameters.get("blueprintId"), node.parameters.get("revision")
        if not isinstance(target, str) or "{{" in target:
            return None  # invalid (validation says so) or chosen at run time
        if revision is not None and not isinstance(revision, int):
            return None
        named = " -> ".join((*chain, target))
        where = join_path(*at, "parameters", "blueprintId")
        if target in chain:
            out.append(_problem(where, f"reference cycle {named}", ErrorCode.CIRCULAR_DEPENDENCY))
            return None
        if len(chain) > self.max_depth:  # the child would run at depth len(chain)
            limit = f"{self.max_depth} (CONDUCTOR_MAX_CHILD_DEPTH)"
            message = f"Blueprints nest deeper than {limit}: {named}"
            out.append(_problem(where, message))
            return None
        stored = self._stored(target, revision, at, named, out)
        if stored is None:
            return None
        for problem in self._inner(stored, (*chain, target)):
            message = f"in {named}: {problem.path}: {problem.message}"
            out.append(_problem(where, message, problem.code))
        return stored.revision

    def _stored(
        self, target: str, revision: int | None, at: Path, named: str, out: list[Problem]
    ) -> StoredBlueprint | None:
        try:
            return self.store().get(target, revision)
        except BlueprintNotFound:
            pass
        if revision is not None and self._exists(target):
            where = join_path(*at, "parameters", "revision")
            out.append(
                _problem(where, f"Blueprint {target!r} has no revision {revision} ({named})")
            )
        else:
            where = join_path(*at, "parameters", "blueprintId")
            out.append(_problem(where, f"no stored Blueprint {target!r} ({named})"))
        return None

    def _exists(self, target: str) -> bool:
        try:
            self.store().get(target)
        except BlueprintNotFound:
            return False
        return True

    def _inner(self, stored: StoredBlueprint, chain: tuple[str, ...]) -> list[Problem]:
        """The problems inside a referenced Blueprint (its own references, recursively)."""
        problems: list[Problem] = []
        self._pin_nodes(stored.blueprint.nodes, (), chain, problems)
        return problems


def ancestors(state: StateStore, parent_id: str) -> tuple[str, ...]:
    """The Blueprint ids of `parent_id` and the executions above it, the root first."""
    found: list[str] = []
    at: str | None = parent_id
    while at is not None and len(found) <= MAX_ANCESTORS:
        meta = state.snapshot(at, []).execution
        if meta is None:
            break
        found.append(meta.blueprint_id)
        at = meta.parent_id
    return tuple(reversed(found))


def _references(nodes: Sequence[BlueprintNode]) -> bool:
    return any(node.type == BLUEPRINT_TYPE or _references(node.nodes) for node in nodes)


def _problem(path: str, message: str, code: ErrorCode = ErrorCode.VALIDATION_FAILED) -> Problem:
    return Problem(path=path, code=code, message=message)
