"""`run_node`: run one node of an execution. Knows nothing of Celery."""

from __future__ import annotations

import hashlib
import json
import random
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from typing import Any

from conductor.model.plan import PARALLEL_TYPE, PlannedNode
from conductor.model.waits import Wait
from nodes.base import ExpandingNode, NodeEnvironment, settled_error, settled_failure
from nodes.branching import skipped_output
from nodes.errors import NodeError
from nodes.parking import ParkingNode
from nodes.registry import NodeRegistry
from storage.blobs import pack, unpack
from storage.state import (
    FINISHED_NODE,
    Completion,
    ExecutionStatus,
    NodeLoad,
    NodeStatus,
    now_ms,
)
from storage.waits import Parking
from workers.attempt_watch import AttemptWatch
from workers.expansion import (
    ItemsToRun,
    expand_items,
    item_outcomes,
    items_to_run,
    settled_output,
    with_container,
)
from workers.finalize import finalize
from workers.invocation import Invocation, arrange_inputs, prepare, unpack_upstream
from workers.limited_run import LimitedRun
from workers.output_limits import check_output
from workers.profile import Meter
from workers.skipping import disabled_output, nothing_arrived, run_if_reason
from workers.stores import Stores

# A message redelivered after its worker died counts as an attempt; past this many extra
# deliveries the node fails instead of crashing workers forever.
LOST_WORKER_ALLOWANCE = 2
MAX_BACKOFF_S = 5.0
BUSY_RETRY_S = 1.0  # how soon a delivery that found its node held by another attempt looks again


class Outcome(StrEnum):
    """What became of one delivery of a node task."""

    SUCCEEDED = "succeeded"
    SKIPPED = "skipped"
    FAILED = "failed"
    RETRY = "retry"
    EXPANDED = "expanded"  # a loop's items are to be dispatched, then the loop collects
    BUSY = "busy"  # another attempt holds the node: look again after `retry_in_s`
    IGNORED = "ignored"  # execution over or unknown, the node finished, or the attempt fenced
    PARKED = "parked"  # the node waits, holding no worker: its canvas stops (docs/waits.md)


@dataclass(frozen=True)
class NodeRun:
    """The outcome of `run_node`: the retry delay for RETRY, the items for EXPANDED."""

    outcome: Outcome
    attempt: int = 0
    retry_in_s: float = 0.0
    error: dict[str, Any] | None = None
    items: ItemsToRun | None = None


def run_node(
    execution_id: str,
    node_key: str,
    stores: Stores,
    registry: NodeRegistry,
    *,
    worker: str = "local",
    environment: NodeEnvironment | None = None,
    phase: str | None = None,
    watch: AttemptWatch | None = None,
    queue_wait_ms: int | None = None,
) -> NodeRun:
    """Load the node and its inputs, run it, store its output or error, end the execution
    when this was the last node or a final failure. `phase` is `collect` for the run of a
    loop that follows its items. `watch` keeps the attempt's lease and stops it on cancel.
    `queue_wait_ms` (how long its message waited) goes into the run's profile."""
    load = stores.state.load(execution_id, node_key, worker, phase)
    if load is None or load.node_status in FINISHED_NODE:
        return NodeRun(Outcome.IGNORED)
    if load.execution_status.is_terminal or load.execution_status is ExecutionStatus.PAUSED:
        return NodeRun(Outcome.IGNORED, load.attempt)
    if load.wrong_phase:  # a stale delivery of a loop's other phase
        return NodeRun(Outcome.IGNORED, load.attempt)
    if load.busy:  # a duplicate delivery, or a resume while the node still runs
        return NodeRun(Outcome.BUSY, load.attempt, BUSY_RETRY_S)
    spec = PlannedNode.model_validate_json(load.spec)
    meter = Meter(queue_wait_ms=queue_wait_ms, depends_on=spec.depends_on)
    environment = environment or NodeEnvironment()
    attempt = _Attempt(execution_id, spec, load, stores, environment, watch, meter=meter)
    return attempt.run(registry)


@dataclass(frozen=True)
class _Attempt:
    """One attempt at one node, with what it loaded."""

    execution_id: str
    spec: PlannedNode
    load: NodeLoad
    stores: Stores
    environment: NodeEnvironment
    watch: AttemptWatch | None = None
    meter: Meter = field(default_factory=Meter)
    stop: threading.Event = field(default_factory=threading.Event)
    # Set once the attempt stores its outcome: the watch then leaves it alone (a heartbeat
    # would find the node finished, and must not stop the attempt while it finalizes).
    settling: threading.Event = field(default_factory=threading.Event)

    def run(self, registry: NodeRegistry) -> NodeRun:
        refused = self._refuse()
        if refused is not None:
            return refused
        outputs = unpack_upstream(self.load.upstream, self.stores.blobs, lazy=True)
        self.meter.count_inputs(self.load.upstream, self.load.inputs)
        nothing = nothing_arrived(self.spec, outputs)
        if nothing is not None:  # a branch not taken: skipping goes on downstream
            return self.complete(skipped_output(nothing), NodeStatus.SKIPPED, reason=nothing)
        ports, data = arrange_inputs(self.spec, self.load.inputs, outputs)
        upstream_error = self._upstream_failure(ports)
        if upstream_error is not None:
            output = settled_output(
                self.spec, upstream_error, self.load, self.stores.state, self.execution_id
            )
            return self.complete(output, NodeStatus.FAILED, upstream_error)
        if not self.spec.enabled:
            output = disabled_output(self.spec, data, registry)
            return self.complete(output, NodeStatus.SKIPPED, reason="disabled")
        with self._watched():
            return self._invoke(registry, ports, data)

    @contextmanager
    def _watched(self) -> Iterator[None]:
        """Heartbeats for this attempt while it runs (none without a watch: unit tests)."""
        if self.watch is None:
            yield
            return
        with self.watch.watching(
            self.execution_id, self.spec.key, self.load.attempt, self.stop, self.settling
        ):
            yield

    def _invoke(self, registry: NodeRegistry, ports: dict[str, Any], data: Any) -> NodeRun:
        """Call the node; a failed attempt is retried while `retries` allow."""
        try:
            skip = self._run_if(ports, data)
            if skip is not None:
                return self.complete(skipped_output(skip), NodeStatus.SKIPPED, reason=skip)
            call = prepare(
                self.execution_id,
                self.spec,
                load=self.load,
                registry=registry,
                environment=self.environment,
                inputs=(ports, data),
                on_progress=self.report_progress,
                stop=self.stop,
            )
            call = with_container(call, self.spec, self.load, self.stores.state, self.execution_id)
            return self._call(call)
        except NodeError as exc:
            if exc.retryable and self.load.tries <= _retries(self.spec) and not self.stop.is_set():
                return self.retry_later(exc)
            return self.fail(exc.code, str(exc), exc.node_id)

    def _call(self, call: Invocation) -> NodeRun:
        """Expand or collect a loop, park a wait, reuse a cached output, or run the node."""
        if isinstance(call.node, ExpandingNode) and self.spec.body:
            return self.expand_or_collect(call)
        if isinstance(call.node, ParkingNode):
            wait = call.call(partial(call.node.wait, call.params, call.context))
            if wait is not None:
                return self.park(call, wait)
        if self.spec.cache_ttl_s is not None:
            return self._cached_or_run(call, self.spec.cache_ttl_s)
        return self.complete(self.run_call(call), NodeStatus.SUCCEEDED)

    def _run_if(self, ports: dict[str, Any], data: Any) -> str | None:
        """Why a false `runIf` skips the node (not checked again when a loop collects)."""
        if not self.spec.run_if or self.spec.expanded:
            return None
        limit_s = self.spec.timeout_ms() / 1000
        return run_if_reason(self.spec, data, ports, self.load.variables, limit_s)

    def _refuse(self) -> NodeRun | None:
        """Fail a node whose execution is past its deadline or that keeps losing workers."""
        if self.load.deadline_ms is not None and now_ms() > self.load.deadline_ms:
            return self.fail("TIMEOUT", "the execution ran past its timeout")
        if self.load.tries > 1 + _retries(self.spec) + LOST_WORKER_ALLOWANCE:
            deliveries = self.load.tries - 1
            return self.fail("INTERNAL_ERROR", f"gave up after {deliveries} deliveries")
        return None

    def _cached_or_run(self, call: Invocation, ttl_s: int) -> NodeRun:
        """Reuse the output of the same node type, version, parameters and inputs, or run the
        node and keep its output for `ttl_s`."""
        digest = cache_digest(call)
        hit = self.stores.state.cached_output(digest)
        if hit is not None:
            return self.complete(
                unpack(hit, self.stores.blobs, lazy=True), NodeStatus.SUCCEEDED, cached=True
            )
        output = self.run_call(call)
        run = self.complete(output, NodeStatus.SUCCEEDED)
        if run.outcome is Outcome.SUCCEEDED:
            packed = pack(dict(output), self.stores.blobs, self.stores.blob_threshold_bytes)
            self.stores.state.cache_output(digest, packed, ttl_s)
        return run

    def run_call(self, call: Invocation) -> Mapping[str, Any]:
        """The node's output: in this process, or in a child under the node's `resources`."""
        if self.spec.resources is None:
            return call.run()
        limited = LimitedRun(call, self.spec.resources)
        try:
            return limited.run()
        finally:
            if limited.usage is not None:
                self.meter.child_peak_bytes = limited.usage.peak_rss_bytes

    def report_progress(self, fraction: float, message: str) -> None:
        """A node.progress event for this node."""
        self.stores.state.progress(self.execution_id, self.spec.key, fraction, message)

    def _upstream_failure(self, ports: Mapping[str, Any]) -> dict[str, Any] | None:
        """In a settling scope, a settled failure upstream fails this node the same way, except
        for nodes that collect settled outcomes (parallel, a loop collecting its items)."""
        if not self.spec.settle or self.spec.type == PARALLEL_TYPE or self.spec.expanded:
            return None
        return next((e for v in ports.values() if (e := _first_error(v)) is not None), None)

    def expand_or_collect(self, call: Invocation) -> NodeRun:
        """A loop's first run turns its items into nodes; its second collects their outcomes."""
        node = call.node
        assert isinstance(node, ExpandingNode)
        if self.spec.expanded:
            outcomes = item_outcomes(self.spec, call.context.inputs)
            output = call.call(lambda: node.collect(call.params, call.context, outcomes))
            return self.complete(output, NodeStatus.SUCCEEDED)
        items = call.call(lambda: node.items(call.params, call.context))
        if not items:
            return self.complete(node.collect(call.params, call.context, []), NodeStatus.SUCCEEDED)
        expansion = expand_items(self.spec, items)
        if not self.stores.state.expand(self.execution_id, expansion, attempt=self.load.attempt):
            return NodeRun(Outcome.IGNORED, self.load.attempt)  # fenced off: another expands
        lanes = node.lanes(call.params)
        to_run = items_to_run(expansion, len(items), lanes)
        return NodeRun(Outcome.EXPANDED, self.load.attempt, items=to_run)

    def park(self, call: Invocation, wait: Wait) -> NodeRun:
        """Park the node until a signal or its wake time sends it again, or, when its wait is
        over, store the output built from what ended it."""
        node = call.node
        assert isinstance(node, ParkingNode)
        self.settling.set()  # no heartbeat may take back the lease parking gives up
        key, attempt = self.spec.key, self.load.attempt
        reply = self.stores.state.park(self.execution_id, key, wait, attempt=attempt)
        if reply.parking is Parking.PARKED:
            return NodeRun(Outcome.PARKED, attempt)
        if reply.arrival is None:  # fenced off, or the execution is over
            return NodeRun(Outcome.IGNORED, attempt)
        output = call.call(partial(node.resume, call.params, call.context, reply.arrival))
        return self.complete(output, NodeStatus.SUCCEEDED)

    def complete(
        self,
        output: Mapping[str, Any],
        status: NodeStatus,
        error: dict[str, Any] | None = None,
        *,
        cached: bool = False,
        reason: str | None = None,
    ) -> NodeRun:
        """Store the output (with why a skipped node was skipped); the node that finishes the
        last one ends the execution."""
        self.settling.set()
        try:
            check_output(output, self.environment)  # its size, before any blob is written
            packed = pack(dict(output), self.stores.blobs, self.stores.blob_threshold_bytes)
        except (TypeError, ValueError) as exc:
            return self.fail("SERIALIZATION_FAILED", f"the node's output is not JSON: {exc}")
        except NodeError as exc:  # over CONDUCTOR_MAX_OUTPUT_MB
            return self.fail(exc.code, str(exc))
        stored = self.stores.state.complete(
            self.execution_id,
            self.spec.key,
            packed,
            status,
            error,
            cached=cached,
            attempt=self.load.attempt,
            reason=reason,
            profile=self.meter.profile(packed),
        )
        if stored is Completion.DUPLICATE:
            return NodeRun(Outcome.IGNORED, self.load.attempt)
        if stored is Completion.LAST:
            finalize(self.execution_id, self.stores, ExecutionStatus.SUCCEEDED)
        return NodeRun(Outcome(status.value), self.load.attempt)

    def fail(self, code: str, message: str, node_id: str | None = None) -> NodeRun:
        """Record the failure (of `node_id` when it comes from another node, e.g. a loop's
        item): settled, it becomes the node's output; otherwise it ends the execution."""
        error = {"code": code, "message": message, "nodeId": node_id or self.spec.key}
        self.settling.set()
        if self.spec.settle:
            return self.complete(settled_failure(error), NodeStatus.FAILED, error)
        profile = self.meter.profile(None)
        if not self.stores.state.fail(
            self.execution_id, self.spec.key, error, attempt=self.load.attempt, profile=profile
        ):
            return NodeRun(Outcome.IGNORED, self.load.attempt)  # cancelled, or fenced off
        finalize(self.execution_id, self.stores, ExecutionStatus.FAILED, error)
        return NodeRun(Outcome.FAILED, self.load.attempt, error=error)

    def retry_later(self, exc: NodeError) -> NodeRun:
        """Record the failed attempt; the caller schedules the retry after the backoff."""
        error = {"code": exc.code, "message": str(exc), "nodeId": self.spec.key}
        self.settling.set()
        delay_s = backoff_s(self.load.tries)
        if not self.stores.state.retry_later(
            self.execution_id, self.spec.key, error, delay_s, attempt=self.load.attempt
        ):
            return NodeRun(Outcome.IGNORED, self.load.attempt)
        return NodeRun(Outcome.RETRY, self.load.attempt, delay_s, error)


def cache_digest(call: Invocation) -> str:
    """What makes two node runs the same: type, version, parameters and inputs."""
    node = call.node
    material = [
        node.type_name,
        node.version,
        call.params.model_dump(mode="json", exclude={"enabled", "timeout", "retries"}),
        call.context.inputs,
        call.context.data,
    ]
    text = json.dumps(material, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def backoff_s(attempt: int) -> float:
    """Exponential backoff with jitter: about 1 s, 2 s, 4 s, then 5 s (the cap holds with the
    jitter too)."""
    base = 2.0 ** (attempt - 1)
    return min(base * random.uniform(0.8, 1.2), MAX_BACKOFF_S)


def _retries(spec: PlannedNode) -> int:
    value = spec.parameters.get("retries", 1)
    return value if isinstance(value, int) and value >= 0 else 1


def _first_error(value: Any) -> dict[str, Any] | None:
    """The settled failure in a port's value (a list when several edges feed the port)."""
    values = value if isinstance(value, list) else [value]
    return next((e for v in values if (e := settled_error(v)) is not None), None)
