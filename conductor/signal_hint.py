"""`conductor run`: say how to send the signal a parked `wait-for-signal` node waits for, so a
run does not sit silent until the wait's timeout (docs/waits.md). With the embedded stack the
private Redis is named too: nothing else could reach the execution."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from conductor.model.blueprint import BlueprintNode
from conductor.waiting import OnEvent
from storage.events import Event, EventType

WAIT_TYPE = "wait-for-signal"


def waits_for_signals(nodes: Iterable[BlueprintNode]) -> bool:
    """Whether a node (at any depth) is a `wait-for-signal`."""
    return any(node.type == WAIT_TYPE or waits_for_signals(node.nodes) for node in nodes)


@dataclass
class SignalHint:
    """An event handler: the first time each node parks on a signal, print how to send it;
    every event then goes on to `then`."""

    execution_id: str
    echo: Callable[[str], None]
    redis_url: str | None = None  # the Redis to name (the embedded one), None: the user's own
    then: OnEvent | None = None
    shown: set[str] = field(default_factory=set)

    def __call__(self, event: Event) -> None:
        waiting = event.data.get("waiting") if event.type is EventType.NODE_PROGRESS else None
        name = waiting.get("signal") if isinstance(waiting, dict) else None
        if name and event.node_id is not None and event.node_id not in self.shown:
            self.shown.add(event.node_id)
            where = f"CONDUCTOR_REDIS_URL={self.redis_url} " if self.redis_url else ""
            self.echo(
                f"{event.node_id} waits for signal {name!r}: send it with "
                f"{where}conductor signal {self.execution_id} {name} --data JSON"
            )
        if self.then is not None:
            self.then(event)
