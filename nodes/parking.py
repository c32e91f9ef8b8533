"""`ParkingNode`: a node that waits without holding a worker (docs/waits.md). Its task parks
it and returns; a signal or its wake-up sends it again, and `resume` builds its output from
what ended the wait."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from typing import Any

from conductor.model.waits import Arrival, Wait
from nodes.base import Node, NodeContext, P


class ParkingNode(Node[P]):
    """A node that may wait for a signal or for time to pass, parked."""

    @abstractmethod
    def wait(self, params: P, context: NodeContext) -> Wait | None:
        """What to wait for, parked; None to run (`run`) without parking."""

    @abstractmethod
    def resume(self, params: P, context: NodeContext, arrival: Arrival) -> Mapping[str, Any]:
        """The node's output once its wait is over."""
