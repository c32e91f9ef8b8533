"""The reads of the in-memory state store (MemoryStateStore's base): events, the cache,
results, snapshots and stored plans, from the same dicts the writes fill."""

from __future__ import annotations

from storage.events import Event
from storage.execution_meta import plan_from_fields
from storage.memory_live import MemoryLiveIndex
from storage.state import ExecutionStatus, FinishedNodes, Snapshot, StoredPlan, node_record


class MemoryReads(MemoryLiveIndex):
    """Reading back what MemoryStateStore stored."""

    meta: dict[str, dict[str, str]]
    plans: dict[str, dict[str, str]]
    nodes: dict[str, dict[str, str]]
    outputs: dict[str, dict[str, str]]
    done: dict[str, set[str]]
    results: dict[str, str]
    events_of: dict[str, list[Event]]
    cache: dict[str, str]

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
