"""`delay`: wait for `ms`, then pass the input through. A delay longer than
CONDUCTOR_PARK_DELAY_MS (5 s) parks instead of sleeping: no worker is held (docs/waits.md)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from pydantic import Field

from conductor.model.waits import Arrival, Wait
from nodes.base import NodeContext, NodeParameters
from nodes.errors import NodeStopped, NodeTimeout
from nodes.parking import ParkingNode


class DelayParameters(NodeParameters):
    """Parameters of `delay`."""

    ms: int = Field(default=1000, ge=0, le=3_600_000, description="How long to wait, in ms")


PROGRESS_EVERY_S = 1.0


class DelayNode(ParkingNode[DelayParameters]):
    """Wait `ms` milliseconds; the output's result is the input."""

    type_name = "delay"
    description = "Wait for a number of milliseconds, then pass the input through"
    parameters_model = DelayParameters

    def wait(self, params: DelayParameters, context: NodeContext) -> Wait | None:
        """Park a long delay that fits the node's timeout; sleep through a short one."""
        if (
            params.ms <= context.environment.park_delay_ms
            or params.ms / 1000 > context.remaining_s()
        ):
            return None
        return Wait(timeout_ms=params.ms)

    def resume(
        self, params: DelayParameters, context: NodeContext, arrival: Arrival
    ) -> Mapping[str, Any]:
        return {"result": context.data, "waited_ms": params.ms}

    def run(self, params: DelayParameters, context: NodeContext) -> Mapping[str, Any]:
        wait_s = params.ms / 1000
        if wait_s > context.remaining_s():
            if context.stop.wait(context.remaining_s()):
                raise NodeStopped("delay stopped: the execution was cancelled")
            raise NodeTimeout(f"delay of {params.ms} ms is longer than the node's timeout")
        self._wait(wait_s, context)
        return {"result": context.data, "waited_ms": params.ms}

    @staticmethod
    def _wait(wait_s: float, context: NodeContext) -> None:
        """Sleep, reporting progress about once a second on long waits; stop when told."""
        end = time.monotonic() + wait_s
        while (left := end - time.monotonic()) > 0:
            if context.stop.wait(min(left, PROGRESS_EVERY_S)):
                raise NodeStopped("delay stopped: the execution was cancelled")
            if wait_s > PROGRESS_EVERY_S:
                context.report_progress(1 - max(0.0, end - time.monotonic()) / wait_s, "waiting")
