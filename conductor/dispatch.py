"""Submitting an execution: validate, plan, store, then send its canvas to the workers."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from contextlib import suppress
from typing import Any

from celery import Celery
from kombu.exceptions import OperationalError

from conductor.canvas import build_canvas
from conductor.child_references import ChildReferences, ancestors
from conductor.compiler import compile_plan
from conductor.model.admission import (
    DEFAULT_MAX_RUNNING,
    Admission,
    admitted_plan,
    max_running_setting,
)
from conductor.model.blueprint import Blueprint
from conductor.model.breakpoints import with_breakpoints
from conductor.model.errors import error_data
from conductor.model.loader import ensure_plain_inputs
from conductor.model.plan import ExecutionPlan
from conductor.model.problems import ErrorCode
from conductor.validation import ensure_valid
from nodes.registry import NodeRegistry
from storage.blueprint_archive import BlueprintArchive
from storage.redis_client import StoreError
from storage.state import ExecutionStatus, NodeStatus
from workers.finalize import finalize
from workers.stores import Stores


class DispatchFailed(RuntimeError):
    """The execution was stored but its canvas could not be sent; it is marked failed."""


class Dispatcher:
    """Turns Blueprints into executions on the workers."""

    def __init__(
        self,
        app: Celery,
        stores: Stores,
        registry: NodeRegistry,
        *,
        strict: bool = False,
        archive: BlueprintArchive | None = None,
        references: ChildReferences | None = None,
        max_running_per_key: int = DEFAULT_MAX_RUNNING,
    ) -> None:
        self.app = app
        self.stores = stores
        self.registry = registry
        self.strict = strict  # unknown node fields and parameters are errors, not warnings
        self.archive = archive  # where history's recorder finds the Blueprint (for replay)
        self.references = references  # checks and pins `blueprint` nodes' stored Blueprints
        # A concurrency key's limit for a Blueprint without settings.concurrency.maxRunning.
        self.max_running_per_key = max_running_per_key

    def submit(
        self,
        blueprint: Blueprint,
        inputs: Mapping[str, Any] | None = None,
        execution_id: str | None = None,
        breakpoints: Sequence[str] = (),
        admission: Admission | None = None,
        *,
        parent: tuple[str, str] | None = None,
    ) -> ExecutionPlan:
        """Validate (raising InvalidBlueprint before anything is written), store, dispatch;
        `breakpoints` name the nodes it pauses before (conductor.model.breakpoints); an
        execution whose concurrency key has no free slot waits in its line (not dispatched);
        `parent`: the execution and `blueprint` node this one is the child of
        (docs/children.md)."""
        plan = self.prepare(
            blueprint,
            inputs,
            execution_id,
            breakpoints=breakpoints,
            admission=admission,
            parent=parent,
        )
        self.start(plan)
        return plan

    def prepare(
        self,
        blueprint: Blueprint,
        inputs: Mapping[str, Any] | None = None,
        execution_id: str | None = None,
        *,
        breakpoints: Sequence[str] = (),
        admission: Admission | None = None,
        replay_of: str | None = None,
        parent: tuple[str, str] | None = None,
    ) -> ExecutionPlan:
        """Validate (raising InvalidBlueprint) and plan; archive the Blueprint as submitted,
        its `blueprint` nodes' revisions pinned."""
        ensure_valid(blueprint, self.registry, strict=self.strict)
        ensure_plain_inputs(inputs or {})
        blueprint = self.pinned(blueprint, parent)
        plan = compile_plan(blueprint, execution_id or str(uuid.uuid4()), dict(inputs or {}))
        plan = with_breakpoints(plan, breakpoints)
        if parent is not None:
            plan = plan.model_copy(update={"parent_id": parent[0], "parent_node": parent[1]})
        limit = max_running_setting(blueprint.settings) or self.max_running_per_key
        plan = admitted_plan(plan, admission or Admission(), limit)
        digest = None
        if self.archive is not None:
            digest = self.archive.put(blueprint_text(blueprint))
        return plan.model_copy(update={"blueprint_hash": digest, "replay_of": replay_of})

    def pinned(self, blueprint: Blueprint, parent: tuple[str, str] | None = None) -> Blueprint:
        """`blueprint` with its `blueprint` nodes' revisions pinned, after checking what they
        reference, recursively (InvalidBlueprint otherwise; docs/children.md)."""
        if self.references is None:
            return blueprint
        above = ancestors(self.stores.state, parent[0]) if parent else ()
        return self.references.pin(blueprint, above)

    def start(self, plan: ExecutionPlan, reused: Mapping[str, str] | None = None) -> None:
        """Store a prepared plan and dispatch it unless it waits for a concurrency slot;
        `reused` nodes (key -> packed output) end at once as cached with that output, and
        only the others are sent."""
        admitted = self.stores.state.create(plan)
        for key, output in (reused or {}).items():
            self.stores.state.complete(
                plan.execution_id, key, output, NodeStatus.SUCCEEDED, cached=True
            )
        if admitted:
            self.dispatch(plan, frozenset(reused or ()))

    def redispatch(self, execution_id: str) -> frozenset[str]:
        """Send again every node of a stored execution that has not finished (for resume and
        retry); returns the keys sent. Raises KeyError for an unknown execution."""
        stored = self.stores.state.stored_plan(execution_id)
        if stored is None:
            raise KeyError(f"no execution {execution_id!r} (unknown or expired)")
        self.dispatch(stored.plan, stored.done)
        return frozenset(stored.plan.nodes) - stored.done

    def send_admitted(self, execution_id: str) -> None:
        """Send an execution a freed concurrency slot admitted. A broker that refuses leaves
        it to the reconciler (it is in the live index) rather than failing it: failing it
        would free its slot and admit, and fail, the next in line, down the whole line."""
        stored = self.stores.state.stored_plan(execution_id)
        if stored is None:
            raise KeyError(f"no execution {execution_id!r} (unknown or expired)")
        self.dispatch(stored.plan, stored.done, fail_on_refusal=False)

    def dispatch(
        self,
        plan: ExecutionPlan,
        done: frozenset[str] = frozenset(),
        *,
        fail_on_refusal: bool = True,
    ) -> None:
        """Send the canvas of every node not yet `done`; with none left, end the execution.
        A broker that refuses raises DispatchFailed (ending the execution failed, unless not
        `fail_on_refusal`)."""
        canvas = build_canvas(self.app, plan, done)
        if canvas is None:
            finalize(plan.execution_id, self.stores, ExecutionStatus.SUCCEEDED)
            return
        try:
            # ignore_result: no result subscription here; outcomes travel through our keys.
            canvas.apply_async(ignore_result=True)
        except (OperationalError, StoreError) as exc:
            error = error_data(ErrorCode.TRANSPORT_ERROR, f"the broker refused: {exc}")
            with suppress(StoreError):  # Redis may be the thing that is down
                if fail_on_refusal:
                    finalize(plan.execution_id, self.stores, ExecutionStatus.FAILED, error)
            raise DispatchFailed(str(exc)) from exc
        self.stores.state.mark_dispatched(plan.execution_id)


def blueprint_text(blueprint: Blueprint) -> str:
    """A Blueprint's canonical JSON (sorted keys): equal Blueprints archive once."""
    data = blueprint.model_dump(mode="json", exclude_none=True)
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
