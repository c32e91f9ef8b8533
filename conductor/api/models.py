"""Request and response bodies of the HTTP API (they make up /openapi.json)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from conductor.model.admission import (
    DEFAULT_PRIORITY,
    MAX_KEY_LENGTH,
    MAX_PRIORITY,
    MIN_PRIORITY,
    Admission,
)


class ExecutionRequest(BaseModel):
    """POST /v1/executions: an inline `blueprint` (the Atomiton JSON form) or a stored one's
    `blueprint_id`, the execution's `inputs`, and an optional `idempotency_key`."""

    model_config = ConfigDict(extra="forbid")

    blueprint: dict[str, Any] | None = None
    blueprint_id: str | None = Field(default=None, min_length=1)
    inputs: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=255)
    breakpoints: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="Nodes (key, id, or loop-body key without item numbers) to pause before.",
    )
    # 0-9, 9 most urgent (default 5): the broker priority of every node of the execution.
    priority: int | None = Field(default=None, ge=MIN_PRIORITY, le=MAX_PRIORITY, strict=True)
    # At most the Blueprint's settings.concurrency.maxRunning (else CONDUCTOR_MAX_RUNNING_PER_KEY)
    # executions with this key run at once; the rest wait in line, first in first out.
    concurrency_key: str | None = Field(
        default=None, min_length=1, max_length=MAX_KEY_LENGTH, pattern=r"^[^\s{}]+$"
    )

    def admission(self) -> Admission:
        """The priority and concurrency key asked for."""
        priority = DEFAULT_PRIORITY if self.priority is None else self.priority
        return Admission(priority=priority, concurrency_key=self.concurrency_key)


class BlueprintWarning(BaseModel):
    """Something in the Blueprint that is ignored (an unknown node field or parameter)."""

    path: str
    code: str
    message: str


class ExecutionAccepted(BaseModel):
    """202: the execution's id and status, and what in the Blueprint was ignored
    (CONDUCTOR_STRICT_PARAMETERS=1 on the API refuses those instead); a warning with code
    NO_WORKER names a queue of its nodes that no live worker consumes (they wait there)."""

    id: str
    status: str
    warnings: list[BlueprintWarning] = Field(default_factory=list)


class NodeWaiting(BaseModel):
    """What a parked node waits for (docs/waits.md): `signal`, or the time (null)."""

    signal: str | None = None


class NodeState(BaseModel):
    """One node of an execution; `waiting` while it is parked."""

    node_id: str
    status: str
    attempts: int = 0
    worker: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    duration_ms: int | None = None
    error: dict[str, Any] | None = None
    waiting: NodeWaiting | None = None
    # what the run used (a finished run's profile; see docs/resources.md)
    queue_wait_ms: int | None = None
    cpu_ms: int | None = None
    peak_rss_bytes: int | None = None
    input_bytes: int | None = None
    output_bytes: int | None = None


class NodeInputs(BaseModel):
    """A node's input ports exactly as it received them (or will), and its main input."""

    ports: dict[str, Any]
    input: Any = None


class NodeDetail(BaseModel):
    """One node of a live execution, for debugging: its plan entry, state, resolved inputs
    (null while upstream nodes have not finished: `waiting_for` names them) and output."""

    key: str
    id: str
    type: str
    name: str | None = None
    status: str
    attempts: int = 0
    worker: str | None = None
    error: dict[str, Any] | None = None
    parameters: dict[str, Any]
    depends_on: list[str]
    waiting_for: list[str]
    inputs: NodeInputs | None = None
    output: Any = None
    breakpoint: bool = False  # a breakpoint of the execution matches it


class GraphNode(BaseModel):
    """A node of the execution's plan, for drawing its graph: `depends_on` are node keys."""

    key: str
    id: str
    type: str
    name: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    depends_on: list[str] = Field(default_factory=list)


class ExecutionLink(BaseModel):
    """A parent or child execution (docs/children.md): its id, the `blueprint` node that runs
    the child, and the linked execution's status (None when not known)."""

    id: str
    node: str
    status: str | None = None


class ExecutionView(BaseModel):
    """GET /v1/executions/{id}: status, per-node states and timings, result or error."""

    id: str
    status: str
    blueprint_id: str | None = None
    blueprint_version: str | None = None
    replay_of: str | None = None  # the execution this one replays
    created_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    nodes: list[NodeState] = Field(default_factory=list)
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    graph: list[GraphNode] | None = None  # the plan's nodes, while the execution is in Redis
    parent: ExecutionLink | None = None  # a child execution's parent
    children: list[ExecutionLink] = Field(default_factory=list)  # its `blueprint` nodes' children
    priority: int | None = None  # as submitted (None: the default), while in Redis
    concurrency_key: str | None = None
    queued_reason: str | None = None  # why it is still queued: its key's slots are taken
    line_position: int | None = None  # then its place in the key's line (1: next to start)


class ExecutionPage(BaseModel):
    """GET /v1/executions: a page of executions and the cursor of the next one."""

    items: list[ExecutionView]
    next_cursor: str | None = None


class ValidationReport(BaseModel):
    """POST /v1/blueprints/validate on a valid Blueprint."""

    valid: bool
    errors: list[dict[str, Any]] = Field(default_factory=list)
    warnings: list[BlueprintWarning] = Field(default_factory=list)


class NodeTypeView(BaseModel):
    """A node type in the catalogue."""

    type: str
    version: str
    description: str
    parameters: dict[str, Any]
