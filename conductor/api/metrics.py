"""The Prometheus exposition of `/metrics`, computed at scrape time.

Nothing is counted on the node hot path: executions, node durations, queue waits and CPU times
are aggregates over the history store (the recorder fills it), queue depths are the lengths of
the broker's lists (storage/queue_depths.py), and live workers are the announcements workers
refresh (storage/presence.py). A scrape costs three Redis round trips and four SQL queries.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric

from conductor.model.settings import Settings
from conductor.queues import standard_queues
from storage.history import HistoryStore
from storage.history_stats import (
    DURATION_BUCKETS_MS,
    execution_counts,
    node_durations,
    node_figures,
)
from storage.presence import WorkerPresence
from storage.redis_backend import RedisBackend
from storage.sql_history import SqlHistoryStore

log = logging.getLogger(__name__)


class _Families:
    """A collector that yields metric families built beforehand."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterator[Metric]:
        """The families, as prometheus_client's registry asks for them."""
        return iter(self.families)


def render_metrics(settings: Settings, backend: RedisBackend, history: HistoryStore) -> bytes:
    """The exposition in Prometheus' text format."""
    workers = backend.presence().live()
    queues = list(
        dict.fromkeys([*standard_queues(settings), *(q for w in workers for q in w.queues)])
    )
    families = [*_queue_families(backend.queue_depths(queues), workers)]
    if isinstance(history, SqlHistoryStore):  # every store open_history makes
        try:
            families += _history_families(history)
        except sa.exc.SQLAlchemyError as exc:  # the Redis metrics still count
            log.warning("metrics: the history store did not answer: %s", exc)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    return generate_latest(registry)


def _queue_families(depths: dict[str, int], workers: Sequence[WorkerPresence]) -> list[Metric]:
    depth = GaugeMetricFamily(
        "conductor_queue_depth", "Messages waiting per queue", labels=["queue"]
    )
    for queue, count in depths.items():
        depth.add_metric([queue], count)
    live = GaugeMetricFamily("conductor_workers_live", "Workers whose presence key is fresh")
    live.add_metric([], len(workers))
    consumers = GaugeMetricFamily(
        "conductor_queue_workers", "Live workers consuming each queue", labels=["queue"]
    )
    for queue in depths:
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
    return [executions, durations, *_profile_families(history)]


_PROFILE_FAMILIES = (
    ("queue_wait_ms", "conductor_node_queue_wait_seconds", "Time node tasks waited in their "
     "queue, from publication (or a retry's ETA) to their start, by node type"),
    ("cpu_ms", "conductor_node_cpu_seconds", "CPU time of recorded node runs by node type "
     "(the node's thread and the processes it ran)"),
)  # fmt: skip


def _profile_families(history: SqlHistoryStore) -> list[Metric]:
    families: list[Metric] = []
    bounds = [str(bound / 1000) for bound in DURATION_BUCKETS_MS]
    for figure, name, text in _PROFILE_FAMILIES:
        family = HistogramMetricFamily(name, text, labels=["type"])
        for stats in node_figures(history, figure):
            buckets = list(zip(bounds, stats.bucket_counts, strict=True))
            family.add_metric(
                [stats.type], [*buckets, ("+Inf", stats.count)], sum_value=stats.sum_ms / 1000
            )
        families.append(family)
    return families
