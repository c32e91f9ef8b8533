"""The Prometheus exposition of `/metrics`, computed at scrape time.

Nothing is counted on the node hot path: executions and node durations are aggregates over the
history store (the recorder fills it), queue depths are LLENs of the broker's lists, and live
workers are the presence keys workers refresh (workers/presence.py). A scrape costs three Redis
round trips and two SQL queries.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence

import redis
import sqlalchemy as sa
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric

from conductor.model.settings import Settings
from conductor.queues import standard_queues
from storage.history import HistoryStore
from storage.history_stats import DURATION_BUCKETS_MS, execution_counts, node_durations
from storage.sql_history import SqlHistoryStore
from workers.presence import WorkerPresence, live_workers

log = logging.getLogger(__name__)

# kombu's Redis transport keeps a queue's messages of priority p > 0 in the list
# `<queue>\x06\x16<p>` (its PRIORITY_STEPS and Channel.sep); the depth counts them all.
_PRIORITY_SEPARATOR = "\x06\x16"
_PRIORITY_STEPS = (3, 6, 9)


class _Families:
    """A collector that yields metric families built beforehand."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterator[Metric]:
        """The families, as prometheus_client's registry asks for them."""
        return iter(self.families)


def render_metrics(settings: Settings, client: redis.Redis, history: HistoryStore) -> bytes:
    """The exposition in Prometheus' text format."""
    workers = live_workers(client)
    queues = list(
        dict.fromkeys([*standard_queues(settings), *(q for w in workers for q in w.queues)])
    )
    families = [*_queue_families(client, queues, workers)]
    if isinstance(history, SqlHistoryStore):  # every store open_history makes
        try:
            families += _history_families(history)
        except sa.exc.SQLAlchemyError as exc:  # the Redis metrics still count
            log.warning("metrics: the history store did not answer: %s", exc)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    return generate_latest(registry)


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


def _queue_families(
    client: redis.Redis, queues: Sequence[str], workers: Sequence[WorkerPresence]
) -> list[Metric]:
    depth = GaugeMetricFamily(
        "conductor_queue_depth", "Messages waiting per queue", labels=["queue"]
    )
    for queue, count in queue_depths(client, queues).items():
        depth.add_metric([queue], count)
    live = GaugeMetricFamily("conductor_workers_live", "Workers whose presence key is fresh")
    live.add_metric([], len(workers))
    consumers = GaugeMetricFamily(
        "conductor_queue_workers", "Live workers consuming each queue", labels=["queue"]
    )
    for queue in queues:
        consumers.add_metric([queue], sum(queue in worker.queues for worker in workers))
    return [depth, live, consumers]


def _history_families(history: SqlHistoryStore) -> list[Metric]:
    executions = GaugeMetricFamily(
        "conductor_executions", "Recorded executions by status", labels=["status"]
    )
    for status, count in execution_counts(history).items():
        executions.add_metric([status.value], count)
    durations = HistogramMetricFamily(
        "conductor_node_duration_seconds",
        "Durations of recorded finished node runs by node type and outcome (a failure counts "
        "from its first start)",
        labels=["type", "status"],
    )
    for stats in node_durations(history):
        bounds = [str(bound / 1000) for bound in DURATION_BUCKETS_MS]
        buckets = list(zip(bounds, stats.bucket_counts, strict=True))
        durations.add_metric(
            [stats.type, stats.status.value],
            [*buckets, ("+Inf", stats.count)],
            sum_value=stats.sum_ms / 1000,
        )
    return [executions, durations]
