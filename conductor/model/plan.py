"""The execution plan: a Blueprint flattened into runnable nodes (pure data).

Nested groups are flattened: a child of group `g` gets the key `g/child`, its entry children take
the group's incoming wires, and the group itself becomes a node that runs after its sink
children and collects their outputs. Workers read these records from Redis.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from conductor.model.resources import NodeResources
from conductor.model.timeouts import DEFAULT_TIMEOUT_MS

DEFAULT_PORT = "default"
KEY_SEPARATOR = "/"
ITEM_MARK = "#"
ITEM_SOURCE = "$item"  # in a loop body template: the item the body runs for

# Node types whose `nodes` are planned as nodes of the same execution.
GROUP_TYPE = "group"
LOOP_TYPE = "loop"
PARALLEL_TYPE = "parallel"


class Wire(BaseModel):
    """One incoming edge: which node's output, which key of it, onto which input port."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str
    source_handle: str | None = None
    port: str = DEFAULT_PORT


class RunIf(BaseModel):
    """A `runIf` expression the node checks before it runs: its own, or that of a group it
    enters (`owner`), evaluated over the node's input."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    expression: str
    owner: str


class RateLimit(BaseModel):
    """A token bucket shared by every node with the same key, across workers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str
    per_second: float
    burst: int


class PlannedNode(BaseModel):
    """A node ready to run: its type, raw parameters and incoming wires."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str
    id: str
    type: str
    name: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    wires: list[Wire] = Field(default_factory=list)
    collects: list[str] = Field(default_factory=list)
    queue: str | None = None
    cache_ttl_s: int | None = None  # reuse outputs for the same inputs (see NodeCache)
    rate_limit: RateLimit | None = None
    priority: int | None = None  # the execution's (0-9); None: the default
    run_if: list[RunIf] = Field(default_factory=list)  # outermost group's first
    resources: NodeResources | None = None  # run in a child process with these limits
    settle: bool = False  # a failure becomes this node's output instead of failing the run
    body: list[PlannedNode] = Field(default_factory=list)  # a loop's per-item template
    body_sinks: list[str] = Field(default_factory=list)
    expanded: bool = False  # a loop whose items were dispatched: its next run collects
    children: int = 0  # a group's or parallel's direct children
    # When a collecting loop expanded, or when a container's loop item was expanded: the
    # start of its children when no upstream node's end says it.
    entered_ms: int | None = None

    @property
    def depends_on(self) -> list[str]:
        """Keys of the nodes this one waits for, in wire order, without repeats."""
        return list(dict.fromkeys(wire.source for wire in self.wires))

    @property
    def enabled(self) -> bool:
        """Whether the node runs (a disabled node is skipped and passes its input through)."""
        return self.parameters.get("enabled", True) is not False

    def timeout_ms(self) -> int:
        """The node's `timeout` parameter, or the default of 30 s."""
        value = self.parameters.get("timeout", DEFAULT_TIMEOUT_MS)
        return value if isinstance(value, int) and value > 0 else DEFAULT_TIMEOUT_MS


class ExecutionPlan(BaseModel):
    """Everything needed to run and re-run one execution."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    execution_id: str
    blueprint_id: str
    blueprint_name: str
    blueprint_version: str | None = None
    blueprint_hash: str | None = None  # the archived Blueprint's digest (what replay reruns)
    replay_of: str | None = None  # the execution this one replays
    inputs: dict[str, Any] = Field(default_factory=dict)
    variables: dict[str, Any] = Field(default_factory=dict)
    timeout_ms: int | None = None
    priority: int | None = None  # 0-9, 9 most urgent; None: the default (model/admission.py)
    concurrency_key: str | None = None  # at most `max_running` executions with it run at once
    max_running: int | None = None
    nodes: dict[str, PlannedNode]
    sinks: list[str]
    breakpoints: list[str] = Field(default_factory=list)  # see conductor.model.breakpoints
    # A child execution's parent and the `blueprint` node in it that runs it (docs/children.md)
    parent_id: str | None = None
    parent_node: str | None = None

    def dependencies(self) -> dict[str, list[str]]:
        """Each node key mapped to the keys it waits for."""
        return {key: node.depends_on for key, node in self.nodes.items()}


def item_key(loop_key: str, index: int) -> str:
    """The key of a loop's item `index` (its virtual output holds the item)."""
    return f"{loop_key}{ITEM_MARK}{index}"


def instantiate_item(
    loop: PlannedNode, index: int, entered_ms: int | None = None
) -> list[PlannedNode]:
    """The loop body's nodes for one item: keys under `<loop>#<index>/`, entry wires from the
    item's virtual output; containers among them learn when the item was expanded."""
    source = item_key(loop.key, index)
    prefix = source + KEY_SEPARATOR

    def place(wire: Wire) -> Wire:
        moved = source if wire.source == ITEM_SOURCE else prefix + wire.source
        return wire.model_copy(update={"source": moved})

    return [
        node.model_copy(
            update={
                "key": prefix + node.key,
                "wires": [place(wire) for wire in node.wires],
                "collects": [prefix + key for key in node.collects],
                "entered_ms": entered_ms if node.collects else node.entered_ms,
            }
        )
        for node in loop.body
    ]
