"""The makespan benchmark's worker: `benchmarks.worker` (conductor worker plus bare tasks) with
one more bare task, `bench.sleep`, the bare side's `delay` node.

Run as `python -m benchmarks.makespan_worker [conductor worker options]`.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import redis
from celery import Celery, Task
from celery.signals import worker_init

from benchmarks.worker import BenchWorkerProcess, _add_bare_tasks, done_channel
from conductor import cli
from conductor.model.settings import Settings

SLEEP_TASK = "bench.sleep"
DONE_MESSAGE = "done"


def register_sleep_task(app: Celery, client: redis.Redis) -> None:
    """`bench.sleep(ms, run_id=None)`: sleep; with a run id, announce the run's end after."""

    @app.task(name=SLEEP_TASK, bind=True, ignore_result=True, max_retries=None)
    def sleep(self: Task[Any, Any], ms: int, run_id: str | None = None) -> None:
        """Sleep `ms` milliseconds, as the `delay` node does."""
        time.sleep(ms / 1000)
        if run_id is not None:
            client.publish(done_channel(run_id), DONE_MESSAGE)


def _add_tasks(sender: Any, **extra: Any) -> None:
    _add_bare_tasks(sender, **extra)
    redis_url = Settings.from_env().redis_url
    assert redis_url is not None, "conductor worker refuses to start without a Redis URL"
    register_sleep_task(sender.app, redis.Redis.from_url(redis_url))


def main(argv: list[str] | None = None) -> None:
    """`conductor worker` with the bare tasks added when the worker initialises."""
    worker_init.connect(_add_tasks, weak=False)
    cli.main(["worker", *(sys.argv[1:] if argv is None else argv)])


class MakespanWorkerProcess(BenchWorkerProcess):
    """`python -m benchmarks.makespan_worker`, started as `WorkerProcess` starts a worker."""

    entry_point = ("-m", "benchmarks.makespan_worker")


if __name__ == "__main__":
    main()
