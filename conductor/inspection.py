"""Inspecting one node of a live execution (debugging): its plan entry and state, the inputs
it receives (resolved by the worker's own wire rule), its output, and whether a breakpoint
holds before it. Shared by GET /v1/executions/{id}/nodes/{node} and `conductor inspect`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from conductor.model.breakpoints import template_key
from conductor.model.plan import PlannedNode
from storage.blobs import unpack
from storage.node_outputs import NodeOutputs
from storage.state import NodeRecord, StoredPlan
from workers.invocation import resolve_inputs
from workers.stores import Stores


class NodeNotFound(LookupError):
    """No such node in the execution, or the execution is not in Redis."""


@dataclass(frozen=True)
class Inspector:
    """Reads nodes of executions still in Redis."""

    stores: Stores
    outputs: NodeOutputs

    def planned(self, execution_id: str, node_key: str) -> tuple[StoredPlan, PlannedNode]:
        """The stored plan and the node's entry; NodeNotFound naming both."""
        stored = self.stores.state.stored_plan(execution_id)
        spec = stored.plan.nodes.get(node_key) if stored is not None else None
        if stored is None or spec is None:
            raise NodeNotFound(f"no node {node_key!r} in execution {execution_id!r}")
        return stored, spec

    def inputs(
        self, stored: StoredPlan, spec: PlannedNode
    ) -> tuple[dict[str, Any] | None, list[str]]:
        """`{ports, input}` as the node receives them, or None and the upstream nodes it
        still waits for."""
        upstream = self.outputs.outputs(stored.plan.execution_id, spec.depends_on)
        waiting = [source for source in spec.depends_on if source not in upstream]
        if waiting:
            return None, waiting
        ports, data = resolve_inputs(spec, stored.plan.inputs, upstream, self.stores.blobs)
        return {"ports": ports, "input": data}, []

    def node(self, execution_id: str, node_key: str) -> dict[str, Any]:
        """Everything about one node (the fields of the API's NodeDetail)."""
        stored, spec = self.planned(execution_id, node_key)
        record = self.stores.state.snapshot(execution_id, []).nodes.get(node_key)
        record = record or NodeRecord(key=node_key)
        inputs, waiting = self.inputs(stored, spec)
        text = self.outputs.outputs(execution_id, [node_key]).get(node_key)
        names = {node_key, spec.id, template_key(node_key)}
        return {
            "key": spec.key,
            "id": spec.id,
            "type": spec.type,
            "name": spec.name,
            "status": record.status.value,
            "attempts": record.attempts,
            "worker": record.worker,
            "error": record.error,
            "parameters": spec.parameters,
            "depends_on": spec.depends_on,
            "waiting_for": waiting,
            "inputs": inputs,
            "output": unpack(text, self.stores.blobs) if text is not None else None,
            "breakpoint": bool(names & set(stored.plan.breakpoints)),
        }
