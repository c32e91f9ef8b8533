"""What container nodes (group, parallel, a loop collecting its items) learn about their
children, and the reserved input ports the planner gives them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# A container's ports from the nodes that feed its children (`$entry/0`, ...): only their end
# time is used, to know when the children could start. Ids may not hold "/", so a child's port
# (its id) never looks like one.
ENTRY_PORT = "$entry/"
# A collecting loop's port per item (`$item/0`, ...): the item's virtual output.
ITEM_PORT = "$item/"


@dataclass(frozen=True)
class ContainerRun:
    """Set on the context of a container node that ran children: when they could start (epoch
    ms) and how many direct children it has."""

    entered_ms: int
    children: int = 0


def child_ports(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The ports that hold children's outputs, without the reserved ones."""
    return {
        port: value
        for port, value in inputs.items()
        if not port.startswith(ENTRY_PORT) and not port.startswith(ITEM_PORT)
    }


def iso_timestamp(epoch_ms: int | None = None) -> str:
    """ISO-8601 UTC with milliseconds and `Z`, as Atomiton writes timestamps."""
    moment = datetime.now(UTC) if epoch_ms is None else datetime.fromtimestamp(epoch_ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_ms() -> int:
    """Wall-clock time in epoch milliseconds."""
    return int(datetime.now(UTC).timestamp() * 1000)
