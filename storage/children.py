"""Child executions (docs/children.md): what a child's end hands its parent's `blueprint` node."""

from __future__ import annotations

import json
from typing import Any

from conductor.model.children import child_signal
from storage import keys


def child_ended(child: str, status: str) -> str:
    """The signal's payload: which child ended, and how (the node reads its result)."""
    return json.dumps({"executionId": child, "status": status}, separators=(",", ":"))


def parent_handoff(
    execution_id: str, parent: tuple[str | None, str | None], status: str
) -> tuple[list[str], list[Any]]:
    """finish.lua's extra KEYS and ARGV for a child execution (none for any other)."""
    parent_id, parent_node = parent
    if not parent_id or not parent_node:
        return [], []
    parent_keys = [keys.meta(parent_id), keys.signals(parent_id), keys.waiting(parent_id)]
    args = [parent_id, child_signal(parent_node), child_ended(execution_id, status)]
    return [*parent_keys, keys.WAKEUPS, keys.WAKEUP_NUDGES], args
