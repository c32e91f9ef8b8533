"""What the client returns for a finished execution: the result object and its parts."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# Responses: a newer server may add fields, and an older client must keep reading them.
_RESPONSE = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")


class ResultError(BaseModel):
    """Why an execution did not succeed: a contract error code, a message, the node."""

    model_config = _RESPONSE

    code: str
    message: str
    node_id: str | None = Field(default=None, alias="nodeId")


class TraceEntry(BaseModel):
    """One node's part in an execution."""

    model_config = _RESPONSE

    node_id: str = Field(alias="nodeId")
    status: str
    attempts: int = 0
    worker: str | None = None
    start_offset_ms: int | None = None
    duration_ms: int | None = None
    error: dict[str, Any] | None = None


class Result(BaseModel):
    """The result object of a finished execution (CONTRACT section 2)."""

    model_config = _RESPONSE

    id: str
    status: str
    success: bool
    data: dict[str, Any] = Field(default_factory=dict)
    error: ResultError | None = None
    duration_ms: int | None = None
    executed_nodes: list[str] = Field(default_factory=list, alias="executedNodes")
    trace: list[TraceEntry] = Field(default_factory=list)
