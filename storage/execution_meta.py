"""An execution's meta record (the `meta` hash in Redis): typed, and its stored fields."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from conductor.model.plan import ExecutionPlan, PlannedNode
from storage.statuses import ExecutionStatus, now_ms

LAPSED_PREFIX = "lapsed:"  # `lapsed:<node key>` -> the attempt whose lease lapsed (reconciler)
PASSED_PREFIX = "passed:"  # `passed:<node key>` -> 1: the node held once, it now runs (debugging)


class ExecutionMeta(BaseModel):
    """What the store keeps about an execution beside its nodes; times in ms (Unix)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: ExecutionStatus
    blueprint_id: str = ""
    blueprint_name: str = ""
    blueprint_version: str | None = None
    blueprint_hash: str | None = None
    replay_of: str | None = None  # the execution this one replays
    inputs: dict[str, Any] = Field(default_factory=dict)
    variables: dict[str, Any] = Field(default_factory=dict)
    sinks: list[str] = Field(default_factory=list)
    total: int = 0  # nodes, a loop's items included once it expanded
    created_ms: int | None = None
    started_ms: int | None = None
    finished_ms: int | None = None
    deadline_ms: int | None = None  # the execution's own timeout
    dispatched_ms: int | None = None  # when its canvas reached the broker
    redispatched: int = 0  # re-dispatches of a stall the reconciler made
    seq: int = 0  # the last event's seq
    lapsed: dict[str, int] = Field(default_factory=dict)  # node key -> attempt that lapsed
    priority: int | None = None  # 0-9 as submitted (None: the default)
    concurrency_key: str | None = None
    max_running: int | None = None
    # Why it is still queued: waiting in its concurrency key's line (cleared when admitted).
    queued_reason: str | None = None
    admitted_ms: int | None = None  # when a concurrency slot let it start
    lined_ms: int | None = None  # a retry waiting in line: since when (its timeout stops)
    breakpoints: list[str] = Field(default_factory=list)  # conductor.model.breakpoints
    step: list[str] | None = None  # while stepping: the nodes this step runs
    passed: list[str] = Field(default_factory=list)  # nodes held once, that now run
    parent_id: str | None = None  # a child execution's parent (docs/children.md)
    parent_node: str | None = None  # and the `blueprint` node there that runs it

    @property
    def began_ms(self) -> int | None:
        """When it started running, or when it was created if it never did."""
        return self.started_ms or self.created_ms


_JSON = frozenset({"inputs", "variables", "sinks", "breakpoints", "step"})
_NUMBERS = frozenset(
    {"total", "created_ms", "started_ms", "finished_ms", "deadline_ms", "dispatched_ms"}
    | {"redispatched", "seq", "priority", "max_running", "admitted_ms", "lined_ms"}
)


def parse_meta(fields: dict[str, str]) -> ExecutionMeta | None:
    """The typed meta of stored `fields`; None when there is no execution (no status)."""
    if "status" not in fields:
        return None
    values: dict[str, Any] = {"lapsed": {}, "passed": []}
    for name, text in fields.items():
        if name.startswith(LAPSED_PREFIX):
            values["lapsed"][name.removeprefix(LAPSED_PREFIX)] = int(text)
        elif name.startswith(PASSED_PREFIX):
            values["passed"].append(name.removeprefix(PASSED_PREFIX))
        elif name in _JSON:
            values[name] = json.loads(text)
        elif name in _NUMBERS:
            values[name] = int(text) if text else None
        else:
            values[name] = text or None
    values = {k: v for k, v in values.items() if v is not None}
    return ExecutionMeta.model_validate(values)


def meta_fields(plan: ExecutionPlan) -> dict[str, str]:
    """The meta hash of a new execution."""
    links = {"blueprint_hash": plan.blueprint_hash, "replay_of": plan.replay_of}
    return {
        **{name: value for name, value in links.items() if value},
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
        **_admission_fields(plan),
        **({"breakpoints": json.dumps(plan.breakpoints)} if plan.breakpoints else {}),
        **_parent_fields(plan),
    }


def _parent_fields(plan: ExecutionPlan) -> dict[str, str]:
    if plan.parent_id is None:
        return {}
    return {"parent_id": plan.parent_id, "parent_node": plan.parent_node or ""}


def _admission_fields(plan: ExecutionPlan) -> dict[str, str]:
    fields = {"priority": plan.priority, "max_running": plan.max_running}
    known = {name: str(value) for name, value in fields.items() if value is not None}
    if plan.concurrency_key is not None:
        known["concurrency_key"] = plan.concurrency_key
    return known


def plan_from_fields(
    execution_id: str, meta: dict[str, str], specs: dict[str, str]
) -> ExecutionPlan:
    """Rebuild an ExecutionPlan from the meta hash and the plan hash."""
    return ExecutionPlan(
        execution_id=execution_id,
        blueprint_id=meta["blueprint_id"],
        blueprint_name=meta["blueprint_name"],
        blueprint_version=meta.get("blueprint_version") or None,
        blueprint_hash=meta.get("blueprint_hash") or None,
        replay_of=meta.get("replay_of") or None,
        inputs=json.loads(meta["inputs"]),
        variables=json.loads(meta["variables"]),
        nodes={key: PlannedNode.model_validate_json(spec) for key, spec in specs.items()},
        sinks=json.loads(meta["sinks"]),
        breakpoints=json.loads(meta.get("breakpoints") or "[]"),
        parent_id=meta.get("parent_id") or None,
        parent_node=meta.get("parent_node") or None,
    )
