"""Execution state while it runs: the plan, node states and outputs, the final result.

`StateStore` is the interface; `RedisStateStore` (storage/redis_state.py) is the real one and
`MemoryStateStore` (storage/memory_state.py) its in-memory twin; tests/contract/
test_state_store.py holds both to the same behaviour. Outputs are opaque JSON strings (see
blobs.pack).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from functools import cached_property
from typing import Any, Protocol

from conductor.model.plan import ExecutionPlan, PlannedNode
from storage.events import Event, EventType
from storage.execution_meta import ExecutionMeta, parse_meta
from storage.live_index import LiveIndex
from storage.statuses import (
    FINISHED_NODE,
    LIVE,
    TERMINAL,
    ExecutionStatus,
    NodeStatus,
    now_ms,
)
from storage.waits import Waits

__all__ = [
    "FINISHED_NODE",
    "LEASE_MS",
    "LIVE",
    "TERMINAL",
    "Completion",
    "ExecutionExists",
    "ExecutionStatus",
    "Expansion",
    "FinishedNodes",
    "Heartbeat",
    "NodeLoad",
    "NodeRecord",
    "NodeStatus",
    "Snapshot",
    "StateChange",
    "StateStore",
    "StoredPlan",
    "node_record",
    "now_ms",
]

# A running attempt holds its node for this long past its last heartbeat; a delivery of the
# same node meanwhile waits instead of running it twice, and takes over once it expires.
LEASE_MS = 10_000


class Completion(IntEnum):
    """What storing a node's outcome did (the script's reply)."""

    DUPLICATE = 0  # the node had an outcome already (or the execution is gone): nothing stored
    RECORDED = 1
    LAST = 2  # recorded, and every node of the execution is now finished


class StateChange(StrEnum):
    """What a control change (cancel, pause, resume, reopen) did."""

    DONE = "done"
    CONFLICT = "conflict"  # the execution's state does not allow it
    NOT_FOUND = "not_found"

    @classmethod
    def of_reply(cls, reply: int) -> StateChange:
        """A script's reply: 1 done, 0 refused, -1 unknown execution."""
        return {1: cls.DONE, 0: cls.CONFLICT}.get(int(reply), cls.NOT_FOUND)


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
    profile: dict[str, Any] | None = None  # what its run used (conductor.model.resources)

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
    """An execution as stored: meta fields, node records and the sinks' outputs. `execution`
    is the typed meta (None when the execution is unknown); `meta` the raw fields."""

    meta: dict[str, str]
    nodes: dict[str, NodeRecord]
    sink_outputs: dict[str, str] = field(default_factory=dict)

    @cached_property
    def execution(self) -> ExecutionMeta | None:
        """The typed meta; None when there is no such execution."""
        return parse_meta(self.meta)


@dataclass(frozen=True)
class StoredPlan:
    """A plan read back from the store, and which of its nodes are finished."""

    plan: ExecutionPlan
    done: frozenset[str]


@dataclass(frozen=True)
class FinishedNodes:
    """How far an execution got, read cheaply (no node record): its status, how many nodes
    its plan has (a loop's expansion adds some) and the keys of those with an outcome."""

    status: ExecutionStatus
    planned: int
    done: frozenset[str]


def node_record(key: str, fields: dict[str, str]) -> NodeRecord:
    """A NodeRecord from the `<key>:<field>` entries of the nodes hash."""

    def number(name: str) -> int | None:
        value = fields.get(f"{key}:{name}")
        return int(value) if value else None

    error = fields.get(f"{key}:error")
    profile = fields.get(f"{key}:profile")
    return NodeRecord(
        key=key,
        status=NodeStatus(fields.get(f"{key}:status", NodeStatus.PENDING.value)),
        attempts=number("attempts") or 0,
        started_ms=number("started_ms"),
        finished_ms=number("finished_ms"),
        worker=fields.get(f"{key}:worker"),
        error=json.loads(error) if error else None,
        lease_ms=number("lease_ms"),
        profile=json.loads(profile) if profile else None,
    )


class StateStore(LiveIndex, Waits, Protocol):
    """Where an execution's state lives while it runs (and the live index, storage/live_index;
    parked nodes and signals, storage/waits)."""

    lease_ms: int  # how long a running attempt holds its node past its last heartbeat

    def create(self, plan: ExecutionPlan) -> bool:
        """Store a new execution (status queued) with its plan, atomically; raise
        ExecutionExists when the id is taken. False: it waits for a slot of its concurrency
        key (dispatch nothing; release_slot admits it), True: dispatch it now."""

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
        reason: str | None = None,
        profile: dict[str, Any] | None = None,
    ) -> Completion:
        """Store a node's output and final status (with the error of a settled failure) once;
        say whether it was the execution's last node. `cached`: it came from the cache. With
        `attempt` (the fencing token), only while that attempt still holds the node. `reason`:
        why a skipped node was skipped, in its event's data; `profile` (a NodeProfile's
        fields), what the run used, in its record and its event."""

    def cached_output(self, digest: str) -> str | None:
        """A node output cached under `digest`."""

    def cache_output(self, digest: str, output: str, ttl_s: int) -> None:
        """Keep a node output for `ttl_s` seconds."""

    def expand(self, execution_id: str, expansion: Expansion, *, attempt: int) -> bool:
        """Add a loop's item nodes to the execution, atomically, while `attempt` holds the
        loop; False (nothing added) when it does not."""

    def fail(
        self,
        execution_id: str,
        key: str,
        error: dict[str, Any],
        *,
        attempt: int | None = None,
        profile: dict[str, Any] | None = None,
    ) -> bool:
        """Record a node's failure (and its `profile`, as `complete`); False when it has an
        outcome, `attempt` lost it, or the execution is over."""

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

    def cancel(self, execution_id: str) -> StateChange:
        """Mark a live or paused execution and its unfinished nodes cancelled."""

    def reopen(self, execution_id: str, node_keys: Collection[str]) -> StateChange:
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
    ) -> StateChange:
        """Move to `target` and emit `event` if the status is in `allowed` (a move to
        running also ends stepping)."""

    def step(self, execution_id: str, chosen: Collection[str]) -> StateChange:
        """Run a paused execution for one step: only the `chosen` nodes may start, any other
        pauses it again (emits execution.resumed with `data.step`)."""

    def result(self, execution_id: str) -> str | None:
        """The final result (JSON), if the execution is over."""

    def snapshot(self, execution_id: str, sinks: list[str]) -> Snapshot:
        """The execution's meta, every node record and the given sinks' outputs."""

    def stored_plan(self, execution_id: str) -> StoredPlan | None:
        """The plan as stored, with the keys of the nodes already finished; None if unknown."""

    def finished_nodes(self, execution_id: str) -> FinishedNodes | None:
        """The status, plan size and keys of the nodes with an outcome; None if unknown."""

    def retire(self, execution_id: str, ttl_s: int) -> None:
        """Let a finished execution's state expire within `ttl_s` (never later than now)."""
