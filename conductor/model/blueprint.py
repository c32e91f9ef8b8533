"""The Blueprint model: the Atomiton flow format as typed, frozen data."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from conductor.model.resources import NodeResources

# Editor fields (position, ports, metadata...) are accepted and kept: extra="allow".
_KEEP_UI_FIELDS = ConfigDict(extra="allow", frozen=True, populate_by_name=True)


class Edge(BaseModel):
    """A connection from one node's output to another node's input port."""

    model_config = _KEEP_UI_FIELDS

    id: str | None = None
    source: str = Field(min_length=1)
    target: str = Field(min_length=1)
    sourceHandle: str | None = None
    targetHandle: str | None = None

    @field_validator("sourceHandle", "targetHandle", mode="before")
    @classmethod
    def _boolean_handle(cls, value: Any) -> Any:
        """YAML reads `sourceHandle: true` (an `if` node's branch) as a boolean: its name."""
        return str(value).lower() if isinstance(value, bool) else value


class Variable(BaseModel):
    """A declared execution input with its default."""

    model_config = _KEEP_UI_FIELDS

    type: str = "string"
    defaultValue: Any = None
    description: str | None = None


class NodeCache(BaseModel):
    """Reuse a node's output for the same type, version, parameters and inputs (a Conductor
    extension: `cache: {ttl_s: 3600}` on the node; `cache: true` means one hour)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ttl_s: int = Field(default=3600, ge=1, le=30 * 24 * 3600)


class NodeRateLimit(BaseModel):
    """At most `per_second` runs a second (bursts up to `burst`) across all workers, for every
    node with the same `key` (default: the node type). Limited nodes wait; they do not fail."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    per_second: float = Field(gt=0, le=10_000)
    burst: int = Field(default=1, ge=1, le=10_000)
    key: str | None = Field(default=None, min_length=1, max_length=200)


class BlueprintNode(BaseModel):
    """One node of a Blueprint; a node of type `group` holds its own nodes and edges."""

    model_config = _KEEP_UI_FIELDS

    id: str = Field(min_length=1)
    type: str = Field(min_length=1)
    name: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    queue: str | None = None
    cache: NodeCache | None = None
    rate_limit: NodeRateLimit | None = None
    # A JavaScript expression over `$input` and `$vars`: when false, the node is skipped
    # (a Conductor extension; see docs/conditions.md).
    runIf: str | None = Field(default=None, min_length=1, max_length=10_000)
    resources: NodeResources | None = None  # see conductor.model.resources
    nodes: list[BlueprintNode] = Field(default_factory=list)
    edges: list[Edge] = Field(default_factory=list)

    @field_validator("cache", mode="before")
    @classmethod
    def _cache_flag(cls, value: Any) -> Any:
        """`cache: true` is the default policy, `cache: false` none."""
        if value is True:
            return {}
        return None if value is False else value


class Blueprint(BlueprintNode):
    """A whole Blueprint file: a group with a name, variables and settings."""

    name: str = Field(min_length=1)  # required at the top level
    type: str = "group"
    version: str | None = None
    description: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    variables: dict[str, Variable] = Field(default_factory=dict)
    settings: dict[str, Any] = Field(default_factory=dict)

    def timeout_ms(self) -> int | None:
        """The whole-execution timeout from `settings.runtime.timeout`, if set."""
        runtime = self.settings.get("runtime")
        value = runtime.get("timeout") if isinstance(runtime, dict) else None
        return value if isinstance(value, int) and value > 0 else None
