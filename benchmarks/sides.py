"""The two compared sides: one timed run of a scenario, submit to result known to the client."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

import redis
from celery import Celery

from benchmarks.scenarios import Scenario
from benchmarks.worker import done_channel
from conductor.dispatch import Dispatcher
from conductor.waiting import wait_for_result
from workers.stores import Stores

RUN_TIMEOUT_S = 60.0


class RunFailed(RuntimeError):
    """A benchmark run did not end well within the time allowed."""


@dataclass(frozen=True)
class Timing:
    """One run: seconds until the canvas was sent, and until the client knew the result."""

    submit_s: float
    total_s: float


class Side(Protocol):
    """One way of running a scenario."""

    name: str

    def run(self, scenario: Scenario) -> Timing:
        """Run once."""
        ...


class ConductorSide:
    """Dispatcher.submit, then wait_for_result: what `conductor run` does."""

    name = "conductor"

    def __init__(self, dispatcher: Dispatcher, stores: Stores, client: redis.Redis) -> None:
        self.dispatcher = dispatcher
        self.stores = stores
        self.client = client

    def run(self, scenario: Scenario) -> Timing:
        """Submit the scenario's Blueprint and wait for its result."""
        start = time.perf_counter()
        plan = self.dispatcher.submit(scenario.blueprint, {})
        submitted = time.perf_counter()
        result = wait_for_result(self.client, self.stores, plan.execution_id, RUN_TIMEOUT_S)
        timing = Timing(submitted - start, time.perf_counter() - start)
        if not result.get("success"):
            raise RunFailed(f"{scenario.label}: execution failed: {result.get('error')}")
        return timing


class BareSide:
    """The scenario's plain Celery canvas, ended by `bench.done` publishing on a channel."""

    name = "bare"

    def __init__(self, app: Celery, client: redis.Redis) -> None:
        self.app = app
        self.client = client

    def run(self, scenario: Scenario) -> Timing:
        """Subscribe, send the canvas as Dispatcher does, wait for the done message.

        The subscription comes first, so it is timed before the send (Conductor subscribes
        after; either way it is one request of the client's).
        """
        run_id = uuid.uuid4().hex
        start = time.perf_counter()
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
        pubsub.subscribe(done_channel(run_id))
        try:
            sending = time.perf_counter()
            scenario.bare_canvas(self.app, run_id).apply_async(ignore_result=True)
            submit_s = time.perf_counter() - sending
            wait_for_message(pubsub, RUN_TIMEOUT_S)
        finally:
            pubsub.close()
        return Timing(submit_s, time.perf_counter() - start)


def wait_for_message(pubsub: Any, timeout_s: float) -> None:
    """Return at the first message on a subscribed channel; raise after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while (left := deadline - time.monotonic()) > 0:
        if pubsub.get_message(timeout=left):
            return
    raise RunFailed(f"no done message within {timeout_s} s")
