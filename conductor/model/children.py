"""Child executions (docs/children.md): a `blueprint` node runs a stored Blueprint as a child
execution. The names both sides of the hand-off agree on."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

BLUEPRINT_TYPE = "blueprint"
DEFAULT_MAX_CHILD_DEPTH = 10  # CONDUCTOR_MAX_CHILD_DEPTH
# `/` is outside the names `POST .../signals/{name}` accepts: nobody sends these by hand.
CHILD_SIGNAL_PREFIX = "child/"
_CHILD_IDS = uuid.UUID("6f1c3e0a-3b5d-4c1e-9a57-0c4d1b2e7f10")


def child_signal(node_key: str) -> str:
    """The signal a child's end sends to its parent's node `node_key`."""
    return f"{CHILD_SIGNAL_PREFIX}{node_key}"


def child_id(parent_id: str, node_key: str) -> str:
    """The child execution of node `node_key` of `parent_id`: deterministic, so a redelivered
    node task finds the child it started instead of starting another (a retry of the parent
    retries this child rather than starting a new one)."""
    return str(uuid.uuid5(_CHILD_IDS, f"{parent_id}\n{node_key}"))


@dataclass(frozen=True)
class ChildRequest:
    """What a `blueprint` node asks to run: a stored Blueprint, its revision, its inputs."""

    parent_id: str
    node_key: str
    blueprint_id: str
    revision: int | None = None
    inputs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChildState:
    """A child execution as its parent's node sees it: its status, and its result once over."""

    execution_id: str
    status: str
    result: dict[str, Any] | None = None

    @property
    def over(self) -> bool:
        """Whether it ended (succeeded, failed or cancelled)."""
        return self.status in ("succeeded", "failed", "cancelled")
