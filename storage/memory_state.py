"""`MemoryStateStore`: the in-memory twin of RedisStateStore (same semantics and events, no
Redis), for unit tests; tests/contract/test_state_store.py holds both to the same behaviour."""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from conductor.model.plan import ExecutionPlan
from storage.event_data import node_outcome, queued_event, terminal_event
from storage.events import Event, EventType
from storage.execution_meta import meta_fields, plan_from_fields
from storage.memory_control import MemoryControl
from storage.memory_waits import MemoryWaits
from storage.state import (
    FINISHED_NODE,
    LEASE_MS,
    LIVE,
    Completion,
    ExecutionExists,
    ExecutionStatus,
    Expansion,
    FinishedNodes,
    Heartbeat,
    NodeLoad,
    NodeStatus,
    Snapshot,
    StateChange,
    StoredPlan,
    node_record,
    now_ms,
)

_OUTCOME_EVENTS = {
    NodeStatus.SUCCEEDED: EventType.NODE_SUCCEEDED,
    NodeStatus.SKIPPED: EventType.NODE_SKIPPED,
    NodeStatus.FAILED: EventType.NODE_FAILED,
}


class MemoryStateStore(MemoryControl, MemoryWaits):
    """Execution state in dicts: the same hashes the Redis store keeps, by execution id."""

    def __init__(self, lease_ms: int = LEASE_MS) -> None:
        super().__init__()
        self.lease_ms = lease_ms
        self.meta: dict[str, dict[str, str]] = {}
        self.plans: dict[str, dict[str, str]] = {}
        self.nodes: dict[str, dict[str, str]] = {}
        self.outputs: dict[str, dict[str, str]] = {}
        self.done: dict[str, set[str]] = {}
        self.results: dict[str, str] = {}
        self.events_of: dict[str, list[Event]] = {}
        self.cache: dict[str, str] = {}

    def _live(self, execution_id: str) -> bool:
        meta = self.meta.get(execution_id)
        return meta is not None and ExecutionStatus(meta["status"]) in LIVE

    def create(self, plan: ExecutionPlan) -> bool:
        """Store the plan; emit execution.queued (no concurrency slots here: admitted)."""
        execution_id = plan.execution_id
        if execution_id in self.meta:
            raise ExecutionExists(execution_id)
        self.meta[execution_id] = {**meta_fields(plan), "seq": "1"}
        self.plans[execution_id] = {k: n.model_dump_json() for k, n in plan.nodes.items()}
        self.nodes[execution_id], self.outputs[execution_id] = {}, {}
        self.done[execution_id] = set()
        self.events_of[execution_id] = [queued_event(plan)]
        self.touch_live(execution_id, self.clock_ms())
        return True

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
        stop = None
        if live and node_status not in FINISHED_NODE and not busy and not wrong_phase:
            stop = self._debug_stop(execution_id, key, json.loads(spec)["id"])
            live = stop is None
            busy = stop == "wait"
            status = ExecutionStatus(meta["status"])
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
                f"{key}:lease_ms": str(now_ms() + self.lease_ms),
            }
        )
        self.touch_live(execution_id, self.clock_ms())
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
        reason: str | None = None,
        profile: dict[str, Any] | None = None,
    ) -> Completion:
        """Store the output once; emit the node's outcome."""
        if not self._live(execution_id) or not self._holds(execution_id, key, attempt):
            return Completion.DUPLICATE
        nodes = self.nodes[execution_id]
        self.touch_live(execution_id, self.clock_ms())
        self.outputs[execution_id][key] = output
        nodes.update({f"{key}:status": status.value, f"{key}:finished_ms": str(now_ms())})
        if error:
            nodes[f"{key}:error"] = json.dumps(error)
        duration_ms = now_ms() - int(nodes.get(f"{key}:started_ms", now_ms()))
        kind = EventType.NODE_CACHED if cached else _OUTCOME_EVENTS[status]
        data = node_outcome(duration_ms, error or None, reason)
        self._emit(execution_id, kind, key, {**data, **self._profiled(execution_id, key, profile)})
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
        self,
        execution_id: str,
        key: str,
        error: dict[str, Any],
        *,
        attempt: int | None = None,
        profile: dict[str, Any] | None = None,
    ) -> bool:
        """Record the failure; emit node.failed."""
        if not self._live(execution_id) or not self._holds(execution_id, key, attempt):
            return False
        self.nodes[execution_id].update(
            {
                f"{key}:status": "failed",
                f"{key}:finished_ms": str(now_ms()),
                f"{key}:error": json.dumps(error),
            }
        )
        data = {"error": error, "settled": False, **self._profiled(execution_id, key, profile)}
        self._emit(execution_id, EventType.NODE_FAILED, key, data)
        return True

    def _profiled(self, execution_id: str, key: str, profile: dict[str, Any] | None) -> Any:
        """Keep the run's profile on its node; the event data that carries it."""
        if not profile:
            return {}
        self.nodes[execution_id][f"{key}:profile"] = json.dumps(profile)
        return {"profile": profile}

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
        if not self._live(execution_id) or not self._holds(execution_id, key, attempt):
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
        status = ExecutionStatus(meta["status"])
        if holds:
            nodes[f"{key}:lease_ms"] = str(now_ms() + self.lease_ms)
            if status in (ExecutionStatus.QUEUED, ExecutionStatus.RUNNING):
                self.touch_live(execution_id, self.clock_ms())
        return Heartbeat(status, holds)

    def cancel(self, execution_id: str) -> StateChange:
        """Mark the execution and its unfinished nodes cancelled."""
        meta = self.meta.get(execution_id)
        if meta is None:
            return StateChange.NOT_FOUND
        if ExecutionStatus(meta["status"]) not in LIVE:
            return StateChange.CONFLICT
        meta["status"] = ExecutionStatus.CANCELLED.value
        nodes = self.nodes[execution_id]
        for key in self.plans[execution_id]:
            if nodes.get(f"{key}:status", "pending") in ("pending", "running"):
                nodes.update({f"{key}:status": "cancelled", f"{key}:finished_ms": str(now_ms())})
        return StateChange.DONE

    def reopen(self, execution_id: str, node_keys: Collection[str]) -> StateChange:
        """Back to running with `node_keys` pending; emit execution.resumed (retry)."""
        meta = self.meta.get(execution_id)
        if meta is None:
            return StateChange.NOT_FOUND
        if meta["status"] not in (ExecutionStatus.FAILED, ExecutionStatus.CANCELLED):
            return StateChange.CONFLICT
        nodes = self.nodes[execution_id]
        again = set(node_keys) | {
            key
            for key in self.plans[execution_id]
            if nodes.get(f"{key}:status") in ("failed", "cancelled")
        }
        for key in again:
            self.done[execution_id].discard(key)
            self.outputs[execution_id].pop(key, None)
            for name in ("error", "finished_ms", "lease_ms", "wake_ms", "arrival", "profile"):
                nodes.pop(f"{key}:{name}", None)
            self.drop_handoffs(execution_id, key)
            nodes[f"{key}:status"] = "pending"
            nodes[f"{key}:base"] = nodes.get(f"{key}:attempts", "0")
        self.results.pop(execution_id, None)
        if meta.get("deadline_ms"):  # the execution's timeout counts again from now
            span = int(meta["deadline_ms"]) - int(meta["created_ms"])
            meta["deadline_ms"] = str(now_ms() + span)
        meta["status"] = ExecutionStatus.RUNNING.value
        meta.pop("finished_ms", None)
        meta.pop("redispatched", None)
        self.touch_live(execution_id, self.clock_ms())
        data = {"status": "running", "retry": True, "nodes": sorted(again)}
        self._emit(execution_id, EventType.EXECUTION_RESUMED, None, data)
        return StateChange.DONE

    def progress(self, execution_id: str, key: str, fraction: float, message: str) -> None:
        """Emit node.progress."""
        if self._live(execution_id):
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
        self.forget_live(execution_id)
        cancelled = [] if status is ExecutionStatus.SUCCEEDED else self._drain(execution_id)
        event = terminal_event(execution_id, status, result, summary, cancelled)
        seq = len(self.events_of[execution_id]) + 1
        self.events_of[execution_id].append(event.model_copy(update={"seq": seq}))
        self.hand_to_parent(execution_id, status.value)
        return True

    def _drain(self, execution_id: str) -> list[str]:
        """Every node without an outcome ends cancelled; the keys of all cancelled ones."""
        nodes = self.nodes[execution_id]
        for key in self.plans[execution_id]:
            if nodes.get(f"{key}:status", "pending") in ("pending", "running"):
                nodes.update({f"{key}:status": "cancelled", f"{key}:finished_ms": str(now_ms())})
        plan = self.plans[execution_id]
        return sorted(key for key in plan if nodes.get(f"{key}:status") == "cancelled")

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

    def result(self, execution_id: str) -> str | None:
        """The stored result."""
        return self.results.get(execution_id)

    def snapshot(self, execution_id: str, sinks: list[str]) -> Snapshot:
        """Everything about one execution (empty when unknown, as in Redis)."""
        fields = self.nodes.get(execution_id, {})
        outputs = self.outputs.get(execution_id, {})
        return Snapshot(
            meta=dict(self.meta.get(execution_id, {})),
            nodes={key: node_record(key, fields) for key in self.plans.get(execution_id, {})},
            sink_outputs={key: outputs[key] for key in sinks if key in outputs},
        )

    def stored_plan(self, execution_id: str) -> StoredPlan | None:
        """The plan and the finished nodes."""
        if execution_id not in self.plans or execution_id not in self.meta:
            return None
        plan = plan_from_fields(execution_id, self.meta[execution_id], self.plans[execution_id])
        return StoredPlan(plan, frozenset(self.done[execution_id]))

    def finished_nodes(self, execution_id: str) -> FinishedNodes | None:
        """The status, plan size and finished nodes."""
        if execution_id not in self.plans or execution_id not in self.meta:
            return None
        status = ExecutionStatus(self.meta[execution_id]["status"])
        planned = len(self.plans[execution_id])
        return FinishedNodes(status, planned, frozenset(self.done[execution_id]))

    def retire(self, execution_id: str, ttl_s: int) -> None:
        """Expiry is not modelled in the twin."""
