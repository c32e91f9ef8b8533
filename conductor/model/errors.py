"""The error object of an execution or a node (CONTRACT section 2): `{code, message, nodeId}`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from conductor.model.problems import ErrorCode


class ExecutionError(BaseModel):
    """Why an execution or a node did not succeed: a contract code, a message, the node."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    code: ErrorCode
    message: str
    node_id: str | None = Field(default=None, alias="nodeId")

    def as_data(self) -> dict[str, Any]:
        """The object as stored and sent: `{"code", "message", "nodeId"}`."""
        return self.model_dump(mode="json", by_alias=True)


def error_data(code: ErrorCode, message: str, node_id: str | None = None) -> dict[str, Any]:
    """An error object's data, built through the typed model (the code is checked)."""
    return ExecutionError(code=code, message=message, nodeId=node_id).as_data()
