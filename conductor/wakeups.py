"""Wake-ups: the execution of a parked node is sent again when its wait may be over (its wake
time came, or a signal for it was sent and its sender may have died before sending it). The
node's next attempt settles the wait or parks it again (docs/waits.md). Every worker runs
this in a thread beside the reconciler; claiming a wake-up is atomic, so one fires it."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from conductor.dispatch import Dispatcher
from conductor.model.waits import WAKE_RETRY_MS
from storage.state import ExecutionStatus, StateStore
from storage.waits import WakeUp

log = logging.getLogger(__name__)

WAKE_EVERY_S = 1.0
CLAIM_LIMIT = 500  # wake-ups claimed per look (the rest are due at the next)


@dataclass(frozen=True)
class WakeUps:
    """Fires due wake-ups; `run_forever` in a worker's thread."""

    dispatcher: Dispatcher
    state: StateStore

    def run_forever(self, stop: threading.Event, every_s: float = WAKE_EVERY_S) -> None:
        """Fire what is due every `every_s`, and at once when a child execution's end made
        one due, until `stop` is set; errors are logged."""
        while not stop.is_set():
            try:
                self.state.await_wakeup(every_s)
                if not stop.is_set():
                    self.fire_due()
            except Exception:  # the store unreachable: the next look tries again
                log.exception("wake-ups failed")
                stop.wait(every_s)

    def fire_due(self) -> list[str]:
        """Send again the executions with a wake-up due; their ids."""
        due: dict[str, list[WakeUp]] = {}
        for wakeup in self.state.claim_wakeups(CLAIM_LIMIT, WAKE_RETRY_MS):
            due.setdefault(wakeup.execution_id, []).append(wakeup)
        sent = []
        for execution_id, wakeups in due.items():
            try:
                if self._fire(execution_id, wakeups):
                    sent.append(execution_id)
            except Exception:  # it comes due again: one execution never stops the others
                log.exception("wake-up of execution %s failed", execution_id)
        return sent

    def _fire(self, execution_id: str, wakeups: list[WakeUp]) -> bool:
        finished = self.state.finished_nodes(execution_id)
        if finished is None or finished.status.is_terminal:
            self.state.drop_wakeups(wakeups)
            return False
        if finished.status is ExecutionStatus.PAUSED:  # resume sends it; its nodes park anew
            self.state.drop_wakeups(wakeups)
            return False
        if self._in_line(execution_id):  # a retry waiting for a slot: its admission sends it
            self.state.drop_wakeups(wakeups)
            return False
        log.info("waking execution %s (%s)", execution_id, ", ".join(w.key for w in wakeups))
        self.dispatcher.redispatch(execution_id)
        return True

    def _in_line(self, execution_id: str) -> bool:
        meta = self.state.snapshot(execution_id, []).execution
        return meta is not None and meta.queued_reason is not None
