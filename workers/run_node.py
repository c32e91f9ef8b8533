"""`run_node`: run one node of an execution. Knows nothing of Celery."""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from conductor.plan import PlannedNode
from nodes.base import NodeContext, NodeEnvironment
from nodes.errors import InvalidParameters, NodeError, UnknownNodeType
from nodes.registry import NodeRegistry
from nodes.templates import render_value
from storage.blobs import pack, unpack
from storage.state import FINISHED_NODE, ExecutionStatus, NodeLoad, NodeStatus, now_ms
from workers.finalize import finalize
from workers.stores import Stores

# A message redelivered after its worker died counts as an attempt; past this many extra
# deliveries the node fails instead of crashing workers forever.
LOST_WORKER_ALLOWANCE = 2
MAX_BACKOFF_S = 5.0


class Outcome(StrEnum):
    """What became of one delivery of a node task."""

    SUCCEEDED = "succeeded"
    SKIPPED = "skipped"
    FAILED = "failed"
    RETRY = "retry"
    IGNORED = "ignored"  # execution over or unknown, or the node already finished


@dataclass(frozen=True)
class NodeRun:
    """The outcome of `run_node`, and the delay before the retry when it is RETRY."""

    outcome: Outcome
    attempt: int = 0
    retry_in_s: float = 0.0
    error: dict[str, Any] | None = None


def run_node(
    execution_id: str,
    node_key: str,
    stores: Stores,
    registry: NodeRegistry,
    *,
    worker: str = "local",
    environment: NodeEnvironment | None = None,
) -> NodeRun:
    """Load the node and its inputs, run it, store its output or error, end the execution
    when this was the last node or a final failure."""
    load = stores.state.load(execution_id, node_key, worker)
    if load is None or load.node_status in FINISHED_NODE:
        return NodeRun(Outcome.IGNORED)
    if load.execution_status.is_terminal or load.execution_status is ExecutionStatus.PAUSED:
        return NodeRun(Outcome.IGNORED, load.attempt)
    spec = PlannedNode.model_validate_json(load.spec)
    attempt = _Attempt(execution_id, spec, load, stores, environment or NodeEnvironment())
    return attempt.run(registry)


@dataclass(frozen=True)
class _Attempt:
    """One attempt at one node, with what it loaded."""

    execution_id: str
    spec: PlannedNode
    load: NodeLoad
    stores: Stores
    environment: NodeEnvironment

    def run(self, registry: NodeRegistry) -> NodeRun:
        retries = _retries(self.spec)
        if self.load.deadline_ms is not None and now_ms() > self.load.deadline_ms:
            return self.fail("TIMEOUT", "the execution ran past its timeout")
        if self.load.attempt > 1 + retries + LOST_WORKER_ALLOWANCE:
            deliveries = self.load.attempt - 1
            return self.fail("INTERNAL_ERROR", f"gave up after {deliveries} deliveries")
        ports, data = gather_inputs(self.spec, self.load, self.stores)
        if not self.spec.enabled:
            return self.complete({"result": data}, NodeStatus.SKIPPED)
        try:
            output = execute(
                self.execution_id,
                spec=self.spec,
                ports=ports,
                data=data,
                load=self.load,
                registry=registry,
                environment=self.environment,
            )
        except NodeError as exc:
            if exc.retryable and self.load.attempt <= retries:
                return self.retry_later(exc)
            return self.fail(exc.code, str(exc))
        return self.complete(output, NodeStatus.SUCCEEDED)

    def complete(self, output: Mapping[str, Any], status: NodeStatus) -> NodeRun:
        """Store the output; the node that finishes the last one ends the execution."""
        try:
            packed = pack(dict(output), self.stores.blobs, self.stores.blob_threshold_bytes)
        except (TypeError, ValueError) as exc:
            return self.fail("SERIALIZATION_FAILED", f"the node's output is not JSON: {exc}")
        finished = self.stores.state.complete(self.execution_id, self.spec.key, packed, status)
        if finished >= self.load.total:
            finalize(self.execution_id, self.stores, ExecutionStatus.SUCCEEDED)
        return NodeRun(Outcome(status.value), self.load.attempt)

    def fail(self, code: str, message: str) -> NodeRun:
        """Record the node's failure and end the execution as failed."""
        error = {"code": code, "message": message, "nodeId": self.spec.key}
        self.stores.state.fail(self.execution_id, self.spec.key, error)
        finalize(self.execution_id, self.stores, ExecutionStatus.FAILED, error)
        return NodeRun(Outcome.FAILED, self.load.attempt, error=error)

    def retry_later(self, exc: NodeError) -> NodeRun:
        """Record the failed attempt; the caller schedules the retry after the backoff."""
        error = {"code": exc.code, "message": str(exc), "nodeId": self.spec.key}
        self.stores.state.retry_later(self.execution_id, self.spec.key, error)
        return NodeRun(Outcome.RETRY, self.load.attempt, backoff_s(self.load.attempt), error)


def execute(
    execution_id: str,
    *,
    spec: PlannedNode,
    ports: dict[str, Any],
    data: Any,
    load: NodeLoad,
    registry: NodeRegistry,
    environment: NodeEnvironment,
) -> Mapping[str, Any]:
    """Render parameters, apply input overrides, validate, and run the node with its timeout."""
    try:
        node_type = registry.get(spec.type)
    except UnknownNodeType as exc:  # this worker lacks the plugin; a retry may land elsewhere
        raise NodeError(str(exc), code="NODE_TYPE_NOT_FOUND") from None
    timeout_ms = spec.timeout_ms()
    deadline = time.monotonic() + timeout_ms / 1000
    scope = {
        "input": data,
        "inputs": ports,
        "vars": load.variables,
        "execution": {"id": execution_id},
    }
    raw = render_value(spec.parameters, scope)
    fields = node_type.parameters_model.model_fields
    overrides = {name: ports[name] for name in ports if name in fields and name not in _BASE}
    try:
        params = node_type.parameters_model.model_validate({**raw, **overrides})
    except ValidationError as exc:
        raise InvalidParameters(_describe(exc)) from None
    context = NodeContext(
        execution_id=execution_id,
        node_id=spec.id,
        inputs=ports,
        variables=load.variables,
        attempt=load.attempt,
        deadline=deadline,
        data=data,
        environment=environment,
    )
    try:
        output = node_type().run(params, context)
    except NodeError:
        raise
    except Exception as exc:  # a node's own bug or a time limit: report it, never crash the worker
        code = "TIMEOUT" if time.monotonic() >= deadline else "EXECUTION_FAILED"
        raise NodeError(f"{type(exc).__name__}: {exc}", code=code) from exc
    if not isinstance(output, Mapping) or "result" not in output:
        message = f"node type {spec.type!r} returned no mapping with a 'result' key"
        raise NodeError(message, retryable=False)
    return output


_BASE = frozenset({"enabled", "timeout", "retries"})


def gather_inputs(spec: PlannedNode, load: NodeLoad, stores: Stores) -> tuple[dict[str, Any], Any]:
    """Input ports from the wires, and the node's main input (`$input`).

    An edge delivers the source's output, or its `sourceHandle` key when it has one. Several
    edges into one port deliver a list, in edge order. In `$input`, a whole node output stands
    for its `result`. A node with no wires receives the execution's inputs.
    """
    if not spec.wires:
        return dict(load.inputs), dict(load.inputs)
    outputs = {source: unpack(text, stores.blobs) for source, text in load.upstream.items()}
    ports: dict[str, list[Any]] = {}
    mains: dict[str, list[Any]] = {}
    for wire in spec.wires:
        output = outputs.get(wire.source)
        handle = wire.source_handle
        if isinstance(output, dict) and handle is not None and handle in output:
            value = main = output[handle]
        else:
            value = output
            main = output["result"] if isinstance(output, dict) and "result" in output else output
        ports.setdefault(wire.port, []).append(value)
        mains.setdefault(wire.port, []).append(main)
    flat_ports = {port: vals[0] if len(vals) == 1 else vals for port, vals in ports.items()}
    flat_mains = {port: vals[0] if len(vals) == 1 else vals for port, vals in mains.items()}
    data = next(iter(flat_mains.values())) if len(flat_mains) == 1 else flat_mains
    return flat_ports, data


def backoff_s(attempt: int) -> float:
    """Exponential backoff with jitter: about 1 s, 2 s, 4 s, then 5 s."""
    base = min(2.0 ** (attempt - 1), MAX_BACKOFF_S)
    return base * random.uniform(0.8, 1.2)


def _retries(spec: PlannedNode) -> int:
    value = spec.parameters.get("retries", 1)
    return value if isinstance(value, int) and value >= 0 else 1


def _describe(exc: ValidationError) -> str:
    return "; ".join(
        f"parameters.{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in exc.errors()
    )
