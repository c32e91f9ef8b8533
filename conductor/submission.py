"""Submitting executions for other services: inline or stored Blueprints, idempotency keys."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field, replace
from typing import Any

from conductor.dispatch import Dispatcher
from conductor.model.admission import Admission
from conductor.model.blueprint import Blueprint
from conductor.model.plan import ExecutionPlan, PlannedNode
from conductor.model.problems import Problem
from conductor.validation import ensure_valid, find_warnings
from storage.blueprints import BlueprintStore
from storage.idempotency import IdempotencyClaims, as_idempotency_claims
from storage.presence import PresenceStore
from storage.redis_client import Redis, StoreError
from storage.state import ExecutionExists
from workers.routes import queue_of

IDEMPOTENCY_TTL_S = 24 * 3600
# A key whose first request has not stored its execution after this long is taken over.
CLAIM_WAIT_S = 2.0
# A stored execution not dispatched after this long is dispatched again by a repeat request.
UNDISPATCHED_AFTER_S = 10.0


@dataclass(frozen=True)
class Submitted:
    """The answer to a submission: the execution, and whether this request created it."""

    execution_id: str
    status: str
    created: bool
    # Unknown node fields and parameters, ignored at run time (empty in strict mode).
    warnings: tuple[Problem, ...] = ()
    # Queues the execution's nodes go to that no live worker consumes (they wait there).
    idle_queues: tuple[IdleQueue, ...] = ()


@dataclass(frozen=True)
class IdleQueue:
    """A queue some of an execution's nodes are sent to, which no live worker consumes."""

    queue: str
    node_keys: tuple[str, ...]

    @property
    def message(self) -> str:
        """What to tell the submitter."""
        nodes = ", ".join(self.node_keys[:5]) + (", ..." if len(self.node_keys) > 5 else "")
        return (
            f"no live worker consumes queue {self.queue!r} (nodes {nodes}): the execution "
            f"waits there until one does (conductor worker -Q {self.queue})"
        )


class QueueWatch:
    """Which of a plan's queues no live worker consumes (from worker presence)."""

    def __init__(self, presence: PresenceStore, routes: Mapping[str, str]) -> None:
        self.presence = presence
        self.routes = dict(routes)

    def idle(self, plan: ExecutionPlan) -> tuple[IdleQueue, ...]:
        """The plan's queues nobody consumes; none when presence cannot be read."""
        try:
            consumed = {queue for worker in self.presence.live() for queue in worker.queues}
        except StoreError:
            return ()
        waiting: dict[str, list[str]] = {}
        for node in _every_node(plan.nodes.values()):
            queue = queue_of(node, self.routes)
            if queue not in consumed:
                waiting.setdefault(queue, []).append(node.key)
        return tuple(IdleQueue(queue, tuple(keys)) for queue, keys in waiting.items())


def _every_node(nodes: Iterable[PlannedNode]) -> Iterable[PlannedNode]:
    for node in nodes:
        yield node
        yield from _every_node(node.body)


class Submitter:
    """Validates, stores and dispatches executions; the same idempotency key always gives the
    same execution, also when requests race or the first one crashed half-way."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        claims: IdempotencyClaims | Redis,
        blueprints: BlueprintStore | None = None,
        claim_ttl_s: int = IDEMPOTENCY_TTL_S,
        queues: QueueWatch | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        self.queues = queues
        self.claims = as_idempotency_claims(claims)
        self.blueprints = blueprints
        # A key must not outlive the execution it names, or a repeat would re-create it.
        self.claim_ttl_s = min(claim_ttl_s, IDEMPOTENCY_TTL_S)

    def submit(
        self,
        blueprint: Blueprint | None = None,
        *,
        blueprint_id: str | None = None,
        inputs: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        breakpoints: Sequence[str] = (),
        admission: Admission | None = None,
    ) -> Submitted:
        """Submit an inline `blueprint` or a stored one by `blueprint_id`, pausing before
        the nodes `breakpoints` name; `admission`: its priority and concurrency key."""
        model = self._resolve(blueprint, blueprint_id)
        admission = admission or Admission()
        if idempotency_key is None:
            plan = self.dispatcher.submit(
                model, inputs, breakpoints=breakpoints, admission=admission
            )
            submitted = Submitted(plan.execution_id, "queued", created=True)
        else:
            request = _Request(model, dict(inputs or {}), tuple(breakpoints), admission)
            submitted = self._idempotent(request, idempotency_key)
        submitted = replace(submitted, idle_queues=self._idle_queues(submitted.execution_id))
        if self.dispatcher.strict:
            return submitted
        return replace(submitted, warnings=tuple(find_warnings(model, self.dispatcher.registry)))

    def _idle_queues(self, execution_id: str) -> tuple[IdleQueue, ...]:
        if self.queues is None:
            return ()
        stored = self.dispatcher.stores.state.stored_plan(execution_id)
        return () if stored is None else self.queues.idle(stored.plan)

    def _resolve(self, blueprint: Blueprint | None, blueprint_id: str | None) -> Blueprint:
        if (blueprint is None) == (blueprint_id is None):
            raise ValueError("give exactly one of blueprint and blueprint_id")
        if blueprint is not None:
            return blueprint
        if self.blueprints is None:
            raise ValueError("no Blueprint store is configured")
        stored = self.blueprints.get(str(blueprint_id))
        version = f"{stored.version}+r{stored.revision}"
        return stored.blueprint.model_copy(update={"version": version})

    def _idempotent(self, request: _Request, key: str) -> Submitted:
        execution_id = str(uuid.uuid4())
        fingerprint = request.fingerprint()
        # An invalid request claims no key.
        ensure_valid(request.model, self.dispatcher.registry, strict=self.dispatcher.strict)
        self.dispatcher.pinned(request.model)  # what its `blueprint` nodes reference, too
        if self.claims.claim(key, f"{execution_id} {fingerprint}", self.claim_ttl_s):
            # From here on the key stays: a repeat finds, takes over or re-sends this execution.
            with suppress(ExecutionExists):  # a repeat took over while this one was slow
                request.submit(self.dispatcher, execution_id)
            return Submitted(execution_id, "queued", created=True)
        existing, _, first_request = (self.claims.holder(key) or "").partition(" ")
        if first_request != fingerprint:
            raise IdempotencyConflict(
                "this idempotency_key was used for a different request within 24 h: use a new "
                "key for a new request"
            )
        return self._settle(existing, request)

    def _settle(self, execution_id: str, request: _Request) -> Submitted:
        """A repeated key: wait briefly for the first request to store its execution; take
        over when it never does (it crashed), re-dispatch one stored but never sent."""
        state = self.dispatcher.stores.state
        deadline = time.monotonic() + CLAIM_WAIT_S
        while (meta := state.snapshot(execution_id, []).execution) is None:
            if time.monotonic() > deadline:
                try:  # creation is one script: either it happened or this request does it
                    request.submit(self.dispatcher, execution_id)
                    return Submitted(execution_id, "queued", created=True)
                except ExecutionExists:
                    deadline = time.monotonic() + CLAIM_WAIT_S
            time.sleep(0.05)
        stale = time.time() - (meta.created_ms or 0) / 1000 > UNDISPATCHED_AFTER_S
        # One waiting in its concurrency key's line is not sent: a freed slot sends it.
        if meta.dispatched_ms is None and meta.queued_reason is None and stale:
            self.dispatcher.redispatch(execution_id)
        return Submitted(execution_id, meta.status.value, created=False)


class IdempotencyConflict(ValueError):
    """An idempotency key sent again with a different Blueprint or inputs."""


@dataclass(frozen=True)
class _Request:
    """What one submission asks for."""

    model: Blueprint
    inputs: dict[str, Any]
    breakpoints: tuple[str, ...] = ()
    admission: Admission = field(default_factory=Admission)

    def submit(self, dispatcher: Dispatcher, execution_id: str) -> None:
        """Create and dispatch it as `execution_id`."""
        dispatcher.submit(
            self.model,
            self.inputs,
            execution_id,
            breakpoints=self.breakpoints,
            admission=self.admission,
        )

    def fingerprint(self) -> str:
        """What makes two submissions the same request (requests from before breakpoints and
        admissions keep their fingerprint)."""
        parts: list[Any] = [self.model.model_dump(mode="json"), self.inputs]
        if self.breakpoints:
            parts.append(list(self.breakpoints))
        if self.admission != Admission():
            parts.append([self.admission.priority, self.admission.concurrency_key])
        canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()
