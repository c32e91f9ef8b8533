"""Messages waiting in the broker's queues (kombu's Redis transport keeps each as lists)."""

from __future__ import annotations

from collections.abc import Sequence

import redis

from conductor.model.admission import BROKER_PRIORITY_STEPS

# kombu's Redis transport keeps a queue's messages of priority p > 0 in the list
# `<queue>\x06\x16<p>` (the priority_steps workers.config sets, and Channel.sep); the depth
# counts them all.
_PRIORITY_SEPARATOR = "\x06\x16"
_PRIORITY_STEPS = BROKER_PRIORITY_STEPS[1:]


def queue_depths(client: redis.Redis, queues: Sequence[str]) -> dict[str, int]:
    """Messages waiting in each queue (all priorities), in one round trip."""
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        pipe.llen(queue)
        for step in _PRIORITY_STEPS:
            pipe.llen(f"{queue}{_PRIORITY_SEPARATOR}{step}")
    lengths = [int(length) for length in pipe.execute()]
    per_queue = 1 + len(_PRIORITY_STEPS)
    return {
        queue: sum(lengths[index * per_queue : (index + 1) * per_queue])
        for index, queue in enumerate(queues)
    }
