"""The reconciler: finds executions that stopped making progress and repairs them.

Every live execution is in a sorted set scored by its last progress (a node starting or ending,
a running node's heartbeat, a control command). A pass looks at those idle for a while:
- over, but never finalized (a cancel cut short): finalize it; drop it from the set;
- a node running on a lease that lapsed (its worker is gone or cut off): send again what has
  not finished; the node's next attempt takes over, and the lost one is fenced off;
- every node finished but no final state (a worker died in between): finalize it;
- a node parked (docs/waits.md): it waits, it is not stuck; it leaves the set until its
  wake-up or a signal sends it again (conductor/wakeups.py, a thread beside this one);
- nothing running and nothing queued for `stall_s` (a lost message or chord callback): send
  again what has not finished, at most MAX_REDISPATCHES times, then fail it with the reason;
- a concurrency slot held by an execution that is over or gone: give it to the next in line.
It never overwrites a terminal state: finalizing is a set-once in Redis. Every worker runs it,
one pass at a time across workers (a lock in the store). One execution never stops a pass: one
whose check raises (its state is broken) is logged and skipped, and failed (INTERNAL_ERROR, out
of the live index) once MAX_CHECK_FAILURES passes in a row could not check it. It talks to the
store only through its interface (storage/state.py, storage/live_index.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from celery.signals import worker_ready, worker_shutdown

from conductor.dispatch import Dispatcher
from conductor.model.errors import error_data
from conductor.model.problems import ErrorCode
from conductor.model.settings import Settings
from conductor.services import Services
from conductor.wakeups import WAKE_EVERY_S, WakeUps
from nodes.registry import NodeRegistry
from storage.state import ExecutionStatus, NodeStatus, Snapshot, StateStore, StoredPlan
from workers.admission import dispatch_admitted
from workers.finalize import fail_bare, finalize
from workers.routes import queue_of

log = logging.getLogger(__name__)

MAX_REDISPATCHES = 3
LOCK = "reconciler"  # the store's lock held by the one reconciler running a pass
MAX_CHECK_FAILURES = 3  # passes in a row that could not check an execution, then it is failed
PAGE = 500  # idle executions read per request
MAX_PER_PASS = 5000  # a pass looks at no more (the rest waits for the next pass)


class Repair(StrEnum):
    """What a pass did to one execution."""

    FINALIZED = "finalized"
    REDISPATCHED = "redispatched"
    FAILED = "failed"
    FORGOTTEN = "forgotten"


@dataclass(frozen=True)
class Reconciler:
    """One pass at a time over the live executions; `run_forever` in a worker's thread."""

    dispatcher: Dispatcher
    state: StateStore
    stall_s: int
    every_s: float = 5.0
    routes: Mapping[str, str] = field(default_factory=dict)  # CONDUCTOR_QUEUE_ROUTES
    # execution id -> passes in a row whose check of it raised (this process's count)
    check_failures: dict[str, int] = field(default_factory=dict, compare=False)

    def run_forever(self, stop: threading.Event) -> None:
        """A pass every `every_s` until `stop` is set; errors are logged, never fatal."""
        while not stop.wait(self.every_s):
            try:
                self.run_once()
            except Exception:  # the store unreachable: the next pass tries again
                log.exception("reconciler pass failed")

    def run_once(self) -> dict[str, Repair]:
        """One pass, if no other worker is running one; what it repaired."""
        lock_ms = max(int(self.every_s * 4000), 10_000)
        token = self.state.acquire_lock(LOCK, lock_ms)
        if token is None:
            return {}
        repairs: dict[str, Repair] = {}
        try:
            now = self.state.clock_ms()
            idle_since = now - min(self.state.lease_ms, self.stall_s * 1000)
            for start in range(0, MAX_PER_PASS, PAGE):
                page = self.state.live_executions(idle_since, start=start, limit=PAGE)
                for execution_id in page:
                    repair = self.check_isolated(execution_id, now)
                    if repair is not None:
                        repairs[execution_id] = repair
                if len(page) < PAGE:
                    break
            dispatch_admitted(self._sweep_slots(), self.dispatcher.stores)
        finally:
            self.state.release_lock(LOCK, token)
        for execution_id, repair in repairs.items():
            if repair is not Repair.FORGOTTEN:
                log.warning("reconciler: execution %s %s", execution_id, repair.value)
        return repairs

    def _sweep_slots(self) -> list[str]:
        """Reclaim concurrency slots held by executions that are over or gone (a finalize cut
        short); the executions next in line this admitted."""
        slots = self.dispatcher.stores.slots
        return [] if slots is None else slots.sweep()

    def check_isolated(self, execution_id: str, now: int) -> Repair | None:
        """`check`, where an execution that cannot be checked (its state is broken) is logged
        and skipped, so it never stops the pass; after MAX_CHECK_FAILURES passes it is failed."""
        try:
            repair = self.check(execution_id, now)
        except Exception as exc:
            log.exception("reconciler: execution %s could not be checked", execution_id)
            return self._unrepairable(execution_id, exc)
        self.check_failures.pop(execution_id, None)
        return repair

    def _unrepairable(self, execution_id: str, exc: Exception) -> Repair | None:
        failures = self.check_failures.get(execution_id, 0) + 1
        self.check_failures[execution_id] = failures
        if failures < MAX_CHECK_FAILURES:
            return None
        self.check_failures.pop(execution_id, None)
        message = f"the reconciler could not repair it: {type(exc).__name__}: {exc}"
        error = error_data(ErrorCode.INTERNAL_ERROR, message[:1000])
        try:
            finalize(execution_id, self.dispatcher.stores, ExecutionStatus.FAILED, error)
        except Exception:  # its state cannot even be read: end it with the error alone
            log.exception("reconciler: execution %s could not be finalized", execution_id)
            try:
                fail_bare(execution_id, self.dispatcher.stores, error)
            except Exception:  # not even that (its keys are of the wrong type): let it go
                log.exception("reconciler: execution %s could not be failed", execution_id)
        self.state.forget_live(execution_id)
        return Repair.FAILED

    def check(self, execution_id: str, now: int) -> Repair | None:
        """Look at one idle execution and repair it if it is stuck."""
        snapshot = self.state.snapshot(execution_id, [])
        stored = self.state.stored_plan(execution_id)
        if snapshot.execution is None or stored is None:
            self.state.forget_live(execution_id)
            return Repair.FORGOTTEN
        status = snapshot.execution.status
        if status.is_terminal:
            return self._over(execution_id, status)
        if status is ExecutionStatus.PAUSED:
            self.state.forget_live(execution_id)  # resume puts it back
            return None
        return self._stuck(execution_id, snapshot, stored, now)

    def _stuck(
        self, execution_id: str, snapshot: Snapshot, stored: StoredPlan, now: int
    ) -> Repair | None:
        """Repair a live execution that is stuck, if it is."""
        held = [n for n in snapshot.nodes.values() if n.held]
        lapsed = [n for n in held if n.lease_lapsed(now)]
        # Once per lost attempt; if that does not help, it is a stall like any other.
        if self.state.note_lapsed(execution_id, {n.key: n.attempts for n in lapsed}):
            return self._redispatch(execution_id, count=False)
        if len(held) > len(lapsed):
            return None  # an attempt is alive: its heartbeats are late, not missing
        unsettled = _unsettled_failure(snapshot, stored.done)
        if unsettled is not None or len(stored.done) >= len(stored.plan.nodes):
            status = ExecutionStatus.SUCCEEDED if unsettled is None else ExecutionStatus.FAILED
            finalize(execution_id, self.dispatcher.stores, status, unsettled)
            return Repair.FINALIZED
        if self._parked(execution_id, snapshot):
            self.state.forget_live(execution_id)  # its wake-up or a signal sends it again
            return None
        idle_ms = now - self._last_progress(execution_id, now)
        if idle_ms < self.stall_s * 1000 or self._backlog(stored):
            return None
        return self._redispatch(execution_id, count=True)

    def _parked(self, execution_id: str, snapshot: Snapshot) -> bool:
        """Whether a node of the execution is parked (docs/waits.md): it waits, not stalls."""
        records = snapshot.nodes
        return any(
            key in records and records[key].status is NodeStatus.RUNNING and not records[key].held
            for key in self.state.parked(execution_id)
        )

    def _over(self, execution_id: str, status: ExecutionStatus) -> Repair:
        """A terminal status without a result: a cancel (or finish) cut short."""
        self.state.forget_live(execution_id)
        if self.state.result(execution_id) is not None:
            return Repair.FORGOTTEN
        error = error_data(ErrorCode.CANCELLED, "cancelled on request")
        if status is not ExecutionStatus.CANCELLED:
            message = "the execution ended without storing its result"
            error = error_data(ErrorCode.INTERNAL_ERROR, message)
        finalize(execution_id, self.dispatcher.stores, status, error)
        return Repair.FINALIZED

    def _redispatch(self, execution_id: str, *, count: bool) -> Repair:
        if count and self.state.count_redispatch(execution_id) > MAX_REDISPATCHES:
            message = (
                f"no progress for {self.stall_s} s after {MAX_REDISPATCHES} re-dispatches "
                "(lost messages, or no worker consumes its queue)"
            )
            error = error_data(ErrorCode.EXECUTION_FAILED, message)
            finalize(execution_id, self.dispatcher.stores, ExecutionStatus.FAILED, error)
            return Repair.FAILED
        self.state.touch_live(execution_id, self.state.clock_ms())  # next look: one period on
        self.dispatcher.redispatch(execution_id)
        return Repair.REDISPATCHED

    def _last_progress(self, execution_id: str, default: int) -> int:
        score = self.state.last_progress_ms(execution_id)
        return default if score is None else score

    def _backlog(self, stored: StoredPlan) -> bool:
        """Whether a queue its unfinished nodes use still holds messages (busy workers, not a
        lost message)."""
        queues = {
            queue_of(node, self.routes)
            for key, node in stored.plan.nodes.items()
            if key not in stored.done
        }
        return self.state.queue_backlog(queues)


def _unsettled_failure(snapshot: Snapshot, done: frozenset[str]) -> dict[str, Any] | None:
    """The error of a node whose failure should have ended the execution (not a settled one,
    which counts as done) when nothing ended it: the worker died in between."""
    for record in snapshot.nodes.values():
        if record.status is NodeStatus.FAILED and record.key not in done:
            return record.error or error_data(
                ErrorCode.EXECUTION_FAILED, "the node failed", record.key
            )
    return None


def reconcile_in_worker(settings: Settings, registry: NodeRegistry) -> None:
    """Run a reconciler thread in this worker's main process, from worker_ready to shutdown.
    It has its own Celery app and Redis clients: pool children, forked from this process,
    never share a lock with it."""
    stop = threading.Event()

    def start(**_: Any) -> None:
        services = Services.from_settings(settings, registry=registry, name="reconciler")
        reconciler = Reconciler(
            services.dispatcher,
            services.stores.state,
            settings.stall_s,
            settings.reconcile_every_s,
            settings.queue_routes,
        )
        thread = threading.Thread(
            target=reconciler.run_forever, args=(stop,), name="reconciler", daemon=True
        )
        thread.start()
        wakeups = WakeUps(services.dispatcher, services.stores.state)
        every_s = min(WAKE_EVERY_S, settings.reconcile_every_s)
        waker = threading.Thread(
            target=wakeups.run_forever, args=(stop, every_s), name="wake-ups", daemon=True
        )
        waker.start()

    worker_ready.connect(start, weak=False)
    worker_shutdown.connect(lambda **_: stop.set(), weak=False)
