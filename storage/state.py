"""Execution state while it runs: the plan, node states and outputs, the final result.

`StateStore` is the interface; `RedisStateStore` (storage/redis_state.py) is the real one and
`MemoryStateStore` here its in-memory twin. Outputs are opaque JSON strings (see blobs.pack).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any, Protocol

from conductor.model.plan import ExecutionPlan, PlannedNode
from storage.events import Event, EventType


class ExecutionStatus(StrEnum):
    """Execution states (CONTRACT section 8)."""

    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        """Whether no node may start any more."""
        return self in TERMINAL


TERMINAL = frozenset({ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED})


class NodeStatus(StrEnum):
    """Node states (CONTRACT section 8)."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


# A node in one of these states does not run again (until a retry reopens the execution).
FINISHED_NODE = frozenset(
    {NodeStatus.SUCCEEDED, NodeStatus.SKIPPED, NodeStatus.FAILED, NodeStatus.CANCELLED}
)

# A running attempt holds its node for this long past its last heartbeat; a delivery of the
# same node meanwhile waits instead of running it twice, and takes over once it expires.
LEASE_MS = 10_000


class Completion(IntEnum):
    """What storing a node's outcome did."""

    DUPLICATE = 0  # the node had an outcome already (or the execution is gone): nothing stored
    RECORDED = 1
    LAST = 2  # recorded, and every node of the execution is now finished


class ExecutionExists(ValueError):
    """An execution with this id was created already."""


@dataclass(frozen=True)
class NodeLoad:
    """What a node task needs, read in one round trip."""

    spec: str
    execution_status: ExecutionStatus
    node_status: NodeStatus
    attempt: int
    total: int
    deadline_ms: int | None
    inputs: dict[str, Any]
    variables: dict[str, Any]
    upstream: dict[str, str]
    upstream_finished_ms: dict[str, int] = field(default_factory=dict)
    busy: bool = False  # another attempt holds the node: this delivery did not take it
    tries: int = 0  # attempts since the node was last reset by a retry (`attempt` is the token)
    wrong_phase: bool = False  # a loop delivered for the phase it is not in: not taken


@dataclass(frozen=True)
class Heartbeat:
    """What renewing an attempt's lease found: the execution's status (None when it is gone),
    and whether the attempt still holds its node."""

    status: ExecutionStatus | None
    holds: bool


@dataclass(frozen=True)
class Expansion:
    """A loop's items made into nodes: their specs, the items' virtual outputs (JSON), and
    the loop's spec now marked expanded."""

    loop: PlannedNode
    nodes: list[PlannedNode]
    item_outputs: dict[str, str]


@dataclass(frozen=True)
class NodeRecord:
    """One node's run state."""

    key: str
    status: NodeStatus = NodeStatus.PENDING
    attempts: int = 0
    started_ms: int | None = None
    finished_ms: int | None = None
    worker: str | None = None
    error: dict[str, Any] | None = None
    lease_ms: int | None = None  # a running attempt holds the node until then (0: none does)

    @property
    def held(self) -> bool:
        """Running, with an attempt holding it (an expanded loop waiting for its items is
        running with no attempt holding it)."""
        return self.status is NodeStatus.RUNNING and bool(self.lease_ms)

    def lease_lapsed(self, at_ms: int) -> bool:
        """Held, but its attempt stopped renewing its lease (its worker is gone)."""
        return self.held and (self.lease_ms or 0) < at_ms


@dataclass(frozen=True)
class Snapshot:
    """An execution as stored: meta fields, node records and the sinks' outputs."""

    meta: dict[str, str]
    nodes: dict[str, NodeRecord]
    sink_outputs: dict[str, str] = field(default_factory=dict)


class StateStore(Protocol):
    """Where an execution's state lives while it runs."""

    def create(self, plan: ExecutionPlan) -> None:
        """Store a new execution (status queued) with its plan, atomically; raise
        ExecutionExists when the id is taken."""

    def load(
        self, execution_id: str, key: str, worker: str, phase: str | None = None
    ) -> NodeLoad | None:
        """Read a node's spec and upstream outputs; mark it running unless it is finished, held
        by another attempt, or delivered for the wrong loop `phase`, or the execution is over.
        None when the execution or node is unknown (expired)."""

    def complete(
        self,
        execution_id: str,
        key: str,
        output: str,
        status: NodeStatus,
        error: dict[str, Any] | None = None,
        *,
        cached: bool = False,
        attempt: int | None = None,
    ) -> Completion:
        """Store a node's output and final status (with the error of a settled failure) once;
        say whether it was the execution's last node. `cached`: it came from the cache. With
        `attempt` (the fencing token), only while that attempt still holds the node."""

    def cached_output(self, digest: str) -> str | None:
        """A node output cached under `digest`."""

    def cache_output(self, digest: str, output: str, ttl_s: int) -> None:
        """Keep a node output for `ttl_s` seconds."""

    def expand(self, execution_id: str, expansion: Expansion, *, attempt: int) -> bool:
        """Add a loop's item nodes to the execution, atomically, while `attempt` holds the
        loop; False (nothing added) when it does not."""

    def fail(
        self, execution_id: str, key: str, error: dict[str, Any], *, attempt: int | None = None
    ) -> bool:
        """Record a node's failure; False when it has an outcome or `attempt` lost it."""

    def retry_later(
        self,
        execution_id: str,
        key: str,
        error: dict[str, Any],
        retry_in_s: float = 0.0,
        *,
        attempt: int | None = None,
    ) -> bool:
        """Record a failed attempt that will be retried (as `fail`)."""

    def heartbeat(self, execution_id: str, key: str, attempt: int) -> Heartbeat:
        """Renew a running attempt's lease."""

    def cancel(self, execution_id: str) -> bool | None:
        """Mark a live or paused execution and its unfinished nodes cancelled."""

    def reopen(self, execution_id: str, node_keys: Collection[str]) -> bool | None:
        """Make a failed or cancelled execution running again with `node_keys` pending."""

    def progress(self, execution_id: str, key: str, fraction: float, message: str) -> None:
        """Emit node.progress for a running node."""

    def finish(
        self,
        execution_id: str,
        status: ExecutionStatus,
        result: str,
        summary: dict[str, Any] | None = None,
    ) -> bool:
        """Set the final status and result once; False if the execution was already over.
        `summary`: the result's error and duration_ms, for the terminal event."""

    def events(self, execution_id: str, after_seq: int = 0) -> list[Event] | None:
        """The execution's events with seq > after_seq, in order; None if unknown here."""

    def mark_dispatched(self, execution_id: str) -> None:
        """Note that the execution's canvas reached the broker."""

    def transition(
        self,
        execution_id: str,
        allowed: frozenset[ExecutionStatus],
        target: ExecutionStatus,
        event: EventType,
    ) -> bool | None:
        """Move to `target` and emit `event` if the status is in `allowed` (False if not;
        None for an unknown execution)."""

    def result(self, execution_id: str) -> str | None:
        """The final result (JSON), if the execution is over."""

    def snapshot(self, execution_id: str, sinks: list[str]) -> Snapshot:
        """The execution's meta, every node record and the given sinks' outputs."""

    def stored_plan(self, execution_id: str) -> StoredPlan | None:
        """The plan as stored, with the keys of the nodes already finished; None if unknown."""


@dataclass(frozen=True)
class StoredPlan:
    """A plan read back from the store, and which of its nodes are finished."""

    plan: ExecutionPlan
    done: frozenset[str]


def plan_from_fields(
    execution_id: str, meta: dict[str, str], specs: dict[str, str]
) -> ExecutionPlan:
    """Rebuild an ExecutionPlan from the meta hash and the plan hash."""
    return ExecutionPlan(
        execution_id=execution_id,
        blueprint_id=meta["blueprint_id"],
        blueprint_name=meta["blueprint_name"],
        blueprint_version=meta.get("blueprint_version") or None,
        inputs=json.loads(meta["inputs"]),
        variables=json.loads(meta["variables"]),
        nodes={key: PlannedNode.model_validate_json(spec) for key, spec in specs.items()},
        sinks=json.loads(meta["sinks"]),
    )


def queued_event(plan: ExecutionPlan) -> Event:
    """execution.queued, seq 1."""
    return Event(
        id=str(uuid.uuid4()),
        execution_id=plan.execution_id,
        seq=1,
        type=EventType.EXECUTION_QUEUED,
        ts=now_ms() / 1000,
        data={
            "blueprint_id": plan.blueprint_id,
            "blueprint_name": plan.blueprint_name,
            "blueprint_version": plan.blueprint_version,
            "inputs": plan.inputs,
            "nodes": len(plan.nodes),
        },
    )


def terminal_event(
    execution_id: str, status: ExecutionStatus, result: str, summary: dict[str, Any] | None = None
) -> Event:
    """execution.succeeded|failed|cancelled (its seq is set when it is emitted); `summary`
    holds the error and duration when the stored result is a blob reference."""
    stored = json.loads(result)
    summary = summary or (stored if isinstance(stored, dict) else {})
    return Event(
        id=str(uuid.uuid4()),
        execution_id=execution_id,
        seq=1,
        type=EventType(f"execution.{status.value}"),
        ts=now_ms() / 1000,
        data={
            "status": status.value,
            "error": summary.get("error"),
            "duration_ms": summary.get("duration_ms"),
            "result": stored,
        },
    )


def now_ms() -> int:
    """Wall-clock time in milliseconds."""
    return int(time.time() * 1000)


def meta_fields(plan: ExecutionPlan) -> dict[str, str]:
    """The meta hash of a new execution."""
    return {
        "status": ExecutionStatus.QUEUED.value,
        "blueprint_id": plan.blueprint_id,
        "blueprint_name": plan.blueprint_name,
        "blueprint_version": plan.blueprint_version or "",
        "inputs": json.dumps(plan.inputs),
        "variables": json.dumps(plan.variables),
        "sinks": json.dumps(plan.sinks),
        "total": str(len(plan.nodes)),
        "created_ms": str(now_ms()),
        "deadline_ms": str(now_ms() + plan.timeout_ms) if plan.timeout_ms else "",
    }


def node_record(key: str, fields: dict[str, str]) -> NodeRecord:
    """A NodeRecord from the `<key>:<field>` entries of the nodes hash."""

    def number(name: str) -> int | None:
        value = fields.get(f"{key}:{name}")
        return int(value) if value else None

    error = fields.get(f"{key}:error")
    return NodeRecord(
        key=key,
        status=NodeStatus(fields.get(f"{key}:status", NodeStatus.PENDING.value)),
        attempts=number("attempts") or 0,
        started_ms=number("started_ms"),
        finished_ms=number("finished_ms"),
        worker=fields.get(f"{key}:worker"),
        error=json.loads(error) if error else None,
        lease_ms=number("lease_ms"),
    )


class MemoryStateStore:
    """The in-memory twin of RedisStateStore (same semantics and events, no Redis)."""

    def __init__(self) -> None:
        self.meta: dict[str, dict[str, str]] = {}
        self.plans: dict[str, dict[str, str]] = {}
        self.nodes: dict[str, dict[str, str]] = {}
        self.outputs: dict[str, dict[str, str]] = {}
        self.done: dict[str, set[str]] = {}
        self.results: dict[str, str] = {}
        self.events_of: dict[str, list[Event]] = {}
        self.cache: dict[str, str] = {}

    def _emit(
        self, execution_id: str, kind: EventType, node_id: str | None, data: dict[str, Any]
    ) -> None:
        events = self.events_of[execution_id]
        events.append(
            Event(
                id=str(uuid.uuid4()),
                execution_id=execution_id,
                seq=len(events) + 1,
                type=kind,
                node_id=node_id,
                ts=now_ms() / 1000,
                data=data,
            )
        )

    def create(self, plan: ExecutionPlan) -> None:
        """Store the plan; emit execution.queued."""
        execution_id = plan.execution_id
        if execution_id in self.meta:
            raise ExecutionExists(execution_id)
        self.meta[execution_id] = meta_fields(plan)
        self.plans[execution_id] = {k: n.model_dump_json() for k, n in plan.nodes.items()}
        self.nodes[execution_id], self.outputs[execution_id] = {}, {}
        self.done[execution_id] = set()
        self.events_of[execution_id] = [queued_event(plan)]

    def load(
        self, execution_id: str, key: str, worker: str, phase: str | None = None
    ) -> NodeLoad | None:
        """Read and mark running, as the Redis script does."""
        spec = self.plans.get(execution_id, {}).get(key)
        if spec is None:
            return None
        meta, nodes = self.meta[execution_id], self.nodes[execution_id]
        status = ExecutionStatus(meta["status"])
        node_status = NodeStatus(nodes.get(f"{key}:status", NodeStatus.PENDING.value))
        attempt = int(nodes.get(f"{key}:attempts", "0"))
        live = status in (ExecutionStatus.QUEUED, ExecutionStatus.RUNNING)
        lease_ms = int(nodes.get(f"{key}:lease_ms", "0"))
        wrong_phase = json.loads(spec).get("expanded", False) != (phase == "collect")
        busy = live and node_status is NodeStatus.RUNNING and lease_ms > now_ms()
        if live and node_status not in FINISHED_NODE and not busy and not wrong_phase:
            attempt = self._start(execution_id, key, worker, json.loads(spec)["type"])
        sources = [wire["source"] for wire in json.loads(spec)["wires"]]
        outputs = self.outputs[execution_id]
        return NodeLoad(
            spec=spec,
            execution_status=status,
            node_status=node_status,
            attempt=attempt,
            total=int(meta["total"]),
            deadline_ms=int(meta["deadline_ms"]) if meta["deadline_ms"] else None,
            inputs=json.loads(meta["inputs"]),
            variables=json.loads(meta["variables"]),
            upstream={source: outputs[source] for source in sources if source in outputs},
            upstream_finished_ms={
                source: int(nodes.get(f"{source}:finished_ms", "0"))
                for source in sources
                if source in outputs
            },
            busy=busy and not wrong_phase,
            tries=attempt - int(nodes.get(f"{key}:base", "0")),
            wrong_phase=wrong_phase,
        )

    def _start(self, execution_id: str, key: str, worker: str, kind: str) -> int:
        meta, nodes = self.meta[execution_id], self.nodes[execution_id]
        attempt = int(nodes.get(f"{key}:attempts", "0")) + 1
        nodes.update(
            {
                f"{key}:attempts": str(attempt),
                f"{key}:status": "running",
                f"{key}:started_ms": str(now_ms()),
                f"{key}:worker": worker,
                f"{key}:lease_ms": str(now_ms() + LEASE_MS),
            }
        )
        if meta["status"] == ExecutionStatus.QUEUED:
            meta.update(status="running", started_ms=str(now_ms()))
            self._emit(execution_id, EventType.EXECUTION_STARTED, None, {})
        data = {"attempt": attempt, "worker": worker, "type": kind}
        self._emit(execution_id, EventType.NODE_STARTED, key, data)
        return attempt

    def complete(
        self,
        execution_id: str,
        key: str,
        output: str,
        status: NodeStatus,
        error: dict[str, Any] | None = None,
        *,
        cached: bool = False,
        attempt: int | None = None,
    ) -> Completion:
        """Store the output once; emit the node's outcome."""
        nodes = self.nodes.get(execution_id)
        if nodes is None or not self._holds(execution_id, key, attempt):
            return Completion.DUPLICATE
        self.outputs[execution_id][key] = output
        nodes.update({f"{key}:status": status.value, f"{key}:finished_ms": str(now_ms())})
        data: dict[str, Any] = {
            "duration_ms": now_ms() - int(nodes.get(f"{key}:started_ms", now_ms()))
        }
        if error:
            nodes[f"{key}:error"] = json.dumps(error)
            data.update(error=error, settled=True)
        kinds = {
            NodeStatus.SUCCEEDED: EventType.NODE_SUCCEEDED,
            NodeStatus.SKIPPED: EventType.NODE_SKIPPED,
            NodeStatus.FAILED: EventType.NODE_FAILED,
        }
        self._emit(execution_id, EventType.NODE_CACHED if cached else kinds[status], key, data)
        self.done[execution_id].add(key)
        total = int(self.meta[execution_id]["total"])
        return Completion.LAST if len(self.done[execution_id]) >= total else Completion.RECORDED

    def expand(self, execution_id: str, expansion: Expansion, *, attempt: int) -> bool:
        """Add the item nodes."""
        if not self._holds(execution_id, expansion.loop.key, attempt):
            return False
        plans = self.plans[execution_id]
        plans.update({node.key: node.model_dump_json() for node in expansion.nodes})
        plans[expansion.loop.key] = expansion.loop.model_dump_json()
        self.outputs[execution_id].update(expansion.item_outputs)
        meta = self.meta[execution_id]
        meta["total"] = str(int(meta["total"]) + len(expansion.nodes))
        self.nodes[execution_id][f"{expansion.loop.key}:lease_ms"] = "0"
        return True

    def _holds(self, execution_id: str, key: str, attempt: int | None) -> bool:
        """Whether the node has no outcome yet and `attempt` (None: any) holds it."""
        nodes = self.nodes[execution_id]
        status = NodeStatus(nodes.get(f"{key}:status", "pending"))
        if status in FINISHED_NODE:
            return False
        current = nodes.get(f"{key}:attempts")
        return attempt is None or (status is NodeStatus.RUNNING and current == str(attempt))

    def fail(
        self, execution_id: str, key: str, error: dict[str, Any], *, attempt: int | None = None
    ) -> bool:
        """Record the failure; emit node.failed."""
        if not self._holds(execution_id, key, attempt):
            return False
        self.nodes[execution_id].update(
            {
                f"{key}:status": "failed",
                f"{key}:finished_ms": str(now_ms()),
                f"{key}:error": json.dumps(error),
            }
        )
        self._emit(execution_id, EventType.NODE_FAILED, key, {"error": error, "settled": False})
        return True

    def retry_later(
        self,
        execution_id: str,
        key: str,
        error: dict[str, Any],
        retry_in_s: float = 0.0,
        *,
        attempt: int | None = None,
    ) -> bool:
        """Record the failed attempt; emit node.retrying."""
        if not self._holds(execution_id, key, attempt):
            return False
        nodes = self.nodes[execution_id]
        nodes.update({f"{key}:status": "pending", f"{key}:error": json.dumps(error)})
        attempt = int(nodes.get(f"{key}:attempts", "0"))
        data = {"error": error, "retry_in_s": retry_in_s, "attempt": attempt}
        self._emit(execution_id, EventType.NODE_RETRYING, key, data)
        return True

    def heartbeat(self, execution_id: str, key: str, attempt: int) -> Heartbeat:
        """Renew the lease."""
        meta = self.meta.get(execution_id)
        if meta is None:
            return Heartbeat(None, False)
        nodes = self.nodes[execution_id]
        holds = nodes.get(f"{key}:status") == "running" and nodes.get(f"{key}:attempts") == str(
            attempt
        )
        if holds:
            nodes[f"{key}:lease_ms"] = str(now_ms() + LEASE_MS)
        return Heartbeat(ExecutionStatus(meta["status"]), holds)

    def cancel(self, execution_id: str) -> bool | None:
        """Mark the execution and its unfinished nodes cancelled."""
        meta = self.meta.get(execution_id)
        if meta is None:
            return None
        live = {ExecutionStatus.QUEUED, ExecutionStatus.RUNNING, ExecutionStatus.PAUSED}
        if ExecutionStatus(meta["status"]) not in live:
            return False
        if len(self.done[execution_id]) >= int(meta["total"]):
            return False
        meta["status"] = ExecutionStatus.CANCELLED.value
        nodes = self.nodes[execution_id]
        for key in self.plans[execution_id]:
            if nodes.get(f"{key}:status", "pending") in ("pending", "running"):
                nodes.update({f"{key}:status": "cancelled", f"{key}:finished_ms": str(now_ms())})
        return True

    def reopen(self, execution_id: str, node_keys: Collection[str]) -> bool | None:
        """Back to running with `node_keys` pending; emit execution.resumed (retry)."""
        meta = self.meta.get(execution_id)
        if meta is None:
            return None
        if meta["status"] not in (ExecutionStatus.FAILED, ExecutionStatus.CANCELLED):
            return False
        nodes = self.nodes[execution_id]
        again = set(node_keys) | {
            key
            for key in self.plans[execution_id]
            if nodes.get(f"{key}:status") in ("failed", "cancelled")
        }
        for key in again:
            self.done[execution_id].discard(key)
            self.outputs[execution_id].pop(key, None)
            for name in ("error", "finished_ms", "lease_ms"):
                nodes.pop(f"{key}:{name}", None)
            nodes[f"{key}:status"] = "pending"
            nodes[f"{key}:base"] = nodes.get(f"{key}:attempts", "0")
        self.results.pop(execution_id, None)
        if meta.get("deadline_ms"):  # the execution's timeout counts again from now
            span = int(meta["deadline_ms"]) - int(meta["created_ms"])
            meta["deadline_ms"] = str(now_ms() + span)
        meta["status"] = ExecutionStatus.RUNNING.value
        meta.pop("finished_ms", None)
        meta.pop("redispatched", None)
        data = {"status": "running", "retry": True, "nodes": sorted(again)}
        self._emit(execution_id, EventType.EXECUTION_RESUMED, None, data)
        return True

    def progress(self, execution_id: str, key: str, fraction: float, message: str) -> None:
        """Emit node.progress."""
        data = {"progress": fraction, "message": message}
        self._emit(execution_id, EventType.NODE_PROGRESS, key, data)

    def finish(
        self,
        execution_id: str,
        status: ExecutionStatus,
        result: str,
        summary: dict[str, Any] | None = None,
    ) -> bool:
        """First caller wins; emit the terminal event."""
        if execution_id in self.results:
            return False
        if self.meta[execution_id]["status"] == "cancelled" and status.value != "cancelled":
            return False
        self.results[execution_id] = result
        self.meta[execution_id].update(status=status.value, finished_ms=str(now_ms()))
        event = terminal_event(execution_id, status, result, summary)
        seq = len(self.events_of[execution_id]) + 1
        self.events_of[execution_id].append(event.model_copy(update={"seq": seq}))
        return True

    def events(self, execution_id: str, after_seq: int = 0) -> list[Event] | None:
        """The events after `after_seq`."""
        found = self.events_of.get(execution_id)
        return None if found is None else found[after_seq:]

    def cached_output(self, digest: str) -> str | None:
        """The cached output (expiry not modelled in the twin)."""
        return self.cache.get(digest)

    def cache_output(self, digest: str, output: str, ttl_s: int) -> None:
        """Keep the output."""
        self.cache[digest] = output

    def mark_dispatched(self, execution_id: str) -> None:
        """Note the dispatch."""
        self.meta[execution_id]["dispatched_ms"] = str(now_ms())

    def transition(
        self,
        execution_id: str,
        allowed: frozenset[ExecutionStatus],
        target: ExecutionStatus,
        event: EventType,
    ) -> bool | None:
        """Move if allowed."""
        meta = self.meta.get(execution_id)
        if meta is None:
            return None
        if ExecutionStatus(meta["status"]) not in allowed:
            return False
        meta["status"] = target.value
        self._emit(execution_id, event, None, {"status": target.value})
        return True

    def result(self, execution_id: str) -> str | None:
        """The stored result."""
        return self.results.get(execution_id)

    def snapshot(self, execution_id: str, sinks: list[str]) -> Snapshot:
        """Everything about one execution."""
        fields = self.nodes[execution_id]
        keys = list(self.plans[execution_id])
        outputs = self.outputs[execution_id]
        return Snapshot(
            meta=dict(self.meta[execution_id]),
            nodes={key: node_record(key, fields) for key in keys},
            sink_outputs={key: outputs[key] for key in sinks if key in outputs},
        )

    def stored_plan(self, execution_id: str) -> StoredPlan | None:
        """The plan and the finished nodes."""
        if execution_id not in self.plans:
            return None
        plan = plan_from_fields(execution_id, self.meta[execution_id], self.plans[execution_id])
        return StoredPlan(plan, frozenset(self.done[execution_id]))
