"""How an execution is admitted to the workers: its priority and its concurrency key (pure data).

`priority` 0-9 (9 most urgent, default 5) becomes the broker priority of every node message.
kombu's Redis transport serves LOWER numbers first (priority 0 is its highest), so the broker
priority is 9 - priority; a message sent without one (a continuation, a barrier, a submit)
counts as 0 there and is served before every node. `concurrency_key` with `max_running` (the
Blueprint's `settings.concurrency.maxRunning`, else CONDUCTOR_MAX_RUNNING_PER_KEY) lets at
most that many executions with the key run at once; the rest wait in line, first in first out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from conductor.model.plan import ExecutionPlan, PlannedNode

MIN_PRIORITY = 0
MAX_PRIORITY = 9
DEFAULT_PRIORITY = 5
# kombu's Redis transport: one list per step (its default [0, 3, 6, 9] would merge neighbours).
BROKER_PRIORITY_STEPS = tuple(range(MIN_PRIORITY, MAX_PRIORITY + 1))
DEFAULT_MAX_RUNNING = 1
MAX_KEY_LENGTH = 200
# Printable, no spaces or braces (a brace would end the Redis hash tag the key sits in).
_KEY = re.compile(r"[^\s{}]{1,200}")


class InvalidAdmission(ValueError):
    """A priority, concurrency key or limit out of range; the message names the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class Admission:
    """What a submission asks for beyond its Blueprint and inputs."""

    priority: int = DEFAULT_PRIORITY
    concurrency_key: str | None = None

    def __post_init__(self) -> None:
        check_priority(self.priority)
        if self.concurrency_key is not None:
            check_concurrency_key(self.concurrency_key)


def check_priority(value: Any, field: str = "priority") -> int:
    """`value` as a priority, or InvalidAdmission naming `field`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidAdmission(field, f"must be an integer from {MIN_PRIORITY} to {MAX_PRIORITY}")
    if not MIN_PRIORITY <= value <= MAX_PRIORITY:
        raise InvalidAdmission(
            field, f"{value} is out of range ({MIN_PRIORITY} lowest to {MAX_PRIORITY} most urgent)"
        )
    return value


def check_concurrency_key(value: Any, field: str = "concurrency_key") -> str:
    """`value` as a concurrency key, or InvalidAdmission naming `field`."""
    if not isinstance(value, str) or not _KEY.fullmatch(value):
        raise InvalidAdmission(
            field, f"must be 1 to {MAX_KEY_LENGTH} characters without spaces or braces"
        )
    return value


def broker_priority(priority: int | None) -> int:
    """The kombu Redis priority of a node of an execution with `priority` (0 served first)."""
    return MAX_PRIORITY - (DEFAULT_PRIORITY if priority is None else priority)


def max_running_setting(settings: dict[str, Any]) -> int | None:
    """A Blueprint's `settings.concurrency.maxRunning`, if set (validation checks it)."""
    concurrency = settings.get("concurrency")
    value = concurrency.get("maxRunning") if isinstance(concurrency, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def max_running_problem(settings: dict[str, Any]) -> str | None:
    """What is wrong with a Blueprint's `settings.concurrency`, if anything."""
    concurrency = settings.get("concurrency")
    if concurrency is None:
        return None
    if not isinstance(concurrency, dict):
        return "must be a mapping such as {maxRunning: 2}"
    value = concurrency.get("maxRunning")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return "maxRunning must be a whole number of at least 1"
    return None


def admitted_plan(plan: ExecutionPlan, admission: Admission, max_running: int) -> ExecutionPlan:
    """`plan` with the admission's priority on every node (a loop's body too, so its items
    carry it) and its concurrency key with the limit that applies."""
    update: dict[str, Any] = {}
    if admission.priority != DEFAULT_PRIORITY:
        nodes = {key: _prioritized(node, admission.priority) for key, node in plan.nodes.items()}
        update.update(priority=admission.priority, nodes=nodes)
    if admission.concurrency_key is not None:
        update.update(concurrency_key=admission.concurrency_key, max_running=max_running)
    return plan.model_copy(update=update) if update else plan


def _prioritized(node: PlannedNode, priority: int) -> PlannedNode:
    body = [_prioritized(child, priority) for child in node.body]
    return node.model_copy(update={"priority": priority, "body": body})
