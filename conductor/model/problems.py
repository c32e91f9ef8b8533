"""Validation problems: what is wrong with a Blueprint, and where."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class ErrorCode(StrEnum):
    """The contract's error codes (Atomiton's)."""

    VALIDATION_FAILED = "VALIDATION_FAILED"
    INVALID_PARAMETERS = "INVALID_PARAMETERS"
    NODE_TYPE_NOT_FOUND = "NODE_TYPE_NOT_FOUND"
    CIRCULAR_DEPENDENCY = "CIRCULAR_DEPENDENCY"
    EXECUTION_FAILED = "EXECUTION_FAILED"
    TIMEOUT = "TIMEOUT"
    CANCELLED = "CANCELLED"
    MEMORY_LIMIT_EXCEEDED = "MEMORY_LIMIT_EXCEEDED"
    RATE_LIMIT_EXCEEDED = "RATE_LIMIT_EXCEEDED"
    TRANSPORT_ERROR = "TRANSPORT_ERROR"
    SERIALIZATION_FAILED = "SERIALIZATION_FAILED"
    INTERNAL_ERROR = "INTERNAL_ERROR"


class Problem(BaseModel):
    """One thing wrong with a Blueprint: the field's path, a code and a message."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    code: ErrorCode
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message} [{self.code}]"


class InvalidBlueprint(Exception):
    """A Blueprint was rejected before anything was queued; carries every problem."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def join_path(*parts: str | int) -> str:
    """Join path parts as `nodes[2].parameters.url`."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part:
            out += f".{part}" if out else part
    return out or "$"
