"""Sending a signal to an execution: kept for its `wait-for-signal` nodes, and the execution
sent again at once when one is parked waiting for it (docs/waits.md)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from conductor.dispatch import Dispatcher
from conductor.model.plan import ExecutionPlan, PlannedNode
from conductor.model.waits import MAX_PENDING_SIGNALS
from nodes.wait_for_signal import SIGNAL_NAME, WaitForSignalNode
from storage.waits import Sent, SignalReceipt

WAIT_TYPE = WaitForSignalNode.type_name
NAME = re.compile(SIGNAL_NAME)  # what wait-for-signal's `name` accepts
MAX_PAYLOAD_BYTES = 1024 * 1024


class SignalRefused(ValueError):
    """The signal was not kept; `reason` says why (Sent.NOT_FOUND, OVER, FULL, or None when
    nothing in the execution waits for this name, or the name or payload is not acceptable)."""

    def __init__(self, message: str, reason: Sent | None = None, *, invalid: bool = False):
        super().__init__(message)
        self.reason = reason
        self.invalid = invalid  # the request itself is bad (name, payload)


@dataclass(frozen=True)
class Signals:
    """Delivers signals to executions."""

    dispatcher: Dispatcher

    def send(self, execution_id: str, name: str, payload: Any = None) -> SignalReceipt:
        """Keep `payload` as signal `name` for the execution's waiting nodes; a node parked
        waiting for it is sent again now. Raises SignalRefused."""
        text = _payload_text(name, payload)
        state = self.dispatcher.stores.state
        stored = state.stored_plan(execution_id)
        if stored is None:
            raise SignalRefused(f"no execution {execution_id!r}", Sent.NOT_FOUND)
        if not listens(stored.plan, name):
            message = f"no wait-for-signal node of execution {execution_id!r} waits for {name!r}"
            raise SignalRefused(message)
        receipt = state.signal(execution_id, name, text, max_pending=MAX_PENDING_SIGNALS)
        if receipt.sent is Sent.OVER:
            message = f"execution {execution_id!r} is {receipt.status}: nothing waits any more"
            raise SignalRefused(message, receipt.sent)
        if receipt.sent is Sent.FULL:
            message = f"execution {execution_id!r} keeps {MAX_PENDING_SIGNALS} signals already"
            raise SignalRefused(message, receipt.sent)
        if receipt.sent is Sent.NOT_FOUND:
            raise SignalRefused(f"no execution {execution_id!r}", receipt.sent)
        if receipt.woken:
            self.dispatcher.redispatch(execution_id)
        return receipt


def _payload_text(name: str, payload: Any) -> str:
    if not NAME.fullmatch(name):
        message = f"signal name {name!r}: use 1 to 100 letters, digits, '_', '.', ':' or '-'"
        raise SignalRefused(message, invalid=True)
    try:
        text = json.dumps(payload, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise SignalRefused(f"the payload is not JSON: {exc}", invalid=True) from None
    if len(text.encode()) > MAX_PAYLOAD_BYTES:
        message = f"the payload is over {MAX_PAYLOAD_BYTES // 1024} KiB as JSON"
        raise SignalRefused(message, invalid=True)
    return text


def listens(plan: ExecutionPlan, name: str) -> bool:
    """Whether a wait-for-signal node of the plan (or of a loop's body) may wait for `name`:
    its `name` is `name`, or a template decided at run time."""
    return any(_waits_for(node, name) for node in _all_nodes(plan.nodes.values()))


def _all_nodes(nodes: Iterable[PlannedNode]) -> Iterable[PlannedNode]:
    for node in nodes:
        yield node
        yield from _all_nodes(node.body)


def _waits_for(node: PlannedNode, name: str) -> bool:
    if node.type != WAIT_TYPE:
        return False
    wanted = node.parameters.get("name")
    return wanted == name or (isinstance(wanted, str) and "{{" in wanted)
