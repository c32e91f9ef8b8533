"""`delay`: sleep for `ms`, then pass the input through (for tests and demos)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from pydantic import Field

from nodes.base import Node, NodeContext, NodeParameters
from nodes.errors import NodeTimeout


class DelayParameters(NodeParameters):
    """Parameters of `delay`."""

    ms: int = Field(default=1000, ge=0, le=3_600_000, description="How long to wait, in ms")


class DelayNode(Node[DelayParameters]):
    """Wait `ms` milliseconds; the output's result is the input."""

    type_name = "delay"
    description = "Wait for a number of milliseconds, then pass the input through"
    parameters_model = DelayParameters

    def run(self, params: DelayParameters, context: NodeContext) -> Mapping[str, Any]:
        wait_s = params.ms / 1000
        if wait_s > context.remaining_s():
            time.sleep(context.remaining_s())
            raise NodeTimeout(f"delay of {params.ms} ms is longer than the node's timeout")
        if wait_s > 0:  # sleep(0) still costs the kernel's timer slack
            time.sleep(wait_s)
        return {"result": context.data, "waited_ms": params.ms}
