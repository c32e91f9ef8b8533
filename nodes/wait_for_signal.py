"""`wait-for-signal`: wait, parked (no worker held), until a signal of this name is sent to
the execution (`POST /v1/executions/{id}/signals/{name}`, `conductor signal`); its payload is
the node's output. When `timeout` runs out first the node fails with TIMEOUT, or with
`onTimeout: continue` succeeds with `defaultResult` (docs/waits.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from conductor.model.waits import Arrival, Wait
from nodes.base import NodeContext, NodeParameters
from nodes.errors import NodeError
from nodes.parking import ParkingNode

DAY_MS = 86_400_000
# Waits end within the default state TTL (CONDUCTOR_STATE_TTL_S, 7 days): the execution's keys
# would expire under a longer one.
MAX_WAIT_MS = 7 * DAY_MS
SIGNAL_NAME = r"^[A-Za-z0-9_.:-]{1,100}$"


class WaitForSignalParameters(NodeParameters):
    """Parameters of `wait-for-signal`."""

    name: str = Field(
        pattern=SIGNAL_NAME,
        description="The signal's name: letters, digits, _ . : - (up to 100)",
    )
    timeout: int = Field(
        default=DAY_MS, ge=1, le=MAX_WAIT_MS, description="How long to wait, in ms (1 day)"
    )
    onTimeout: Literal["fail", "continue"] = Field(
        default="fail",
        description="When no signal came in time: fail (TIMEOUT) or continue with defaultResult",
    )
    # not `default`: that is the name of the input port edges feed, which would override it
    defaultResult: Any = Field(
        default=None, description="The result when no signal came in time and onTimeout is continue"
    )


class WaitForSignalNode(ParkingNode[WaitForSignalParameters]):
    """Wait for a signal; its payload is the result."""

    type_name = "wait-for-signal"
    description = "Wait, without holding a worker, for a signal sent to the execution"
    parameters_model = WaitForSignalParameters

    def wait(self, params: WaitForSignalParameters, context: NodeContext) -> Wait:
        return Wait(timeout_ms=params.timeout, signal=params.name)

    def resume(
        self, params: WaitForSignalParameters, context: NodeContext, arrival: Arrival
    ) -> Mapping[str, Any]:
        if not arrival.timed_out:
            return {"result": arrival.payload, "signal": params.name, "timedOut": False}
        if params.onTimeout == "fail":
            message = f"no signal {params.name!r} came within {params.timeout} ms"
            raise NodeError(message, code="TIMEOUT", retryable=False)
        return {"result": params.defaultResult, "signal": params.name, "timedOut": True}

    def run(self, params: WaitForSignalParameters, context: NodeContext) -> Mapping[str, Any]:
        """Never called by a worker (it parks); outside one there is no signal to wait for."""
        raise NodeError("wait-for-signal runs only on a worker", retryable=False)
