"""The benchmark worker: `conductor worker` itself, plus bare no-op tasks on the same app.

Run as `python -m benchmarks.worker [conductor worker options]` with CONDUCTOR_REDIS_URL set;
start it from code with `BenchWorkerProcess`.
"""

from __future__ import annotations

import sys
from typing import Any

import redis
from celery import Celery, Task
from celery.signals import worker_init

from conductor import cli
from conductor.embedded import WorkerProcess
from conductor.model.settings import Settings

NOOP_TASK = "bench.noop"
DONE_TASK = "bench.done"
DONE_MESSAGE = "done"


def done_channel(run_id: str) -> str:
    """The pub/sub channel `bench.done` announces the end of bare run `run_id` on."""
    return f"bench:done:{run_id}"


def register_bare_tasks(app: Celery, client: redis.Redis) -> None:
    """Add the bare tasks, with the options of `conductor.node` (see workers/tasks.py)."""

    @app.task(name=NOOP_TASK, bind=True, ignore_result=True, max_retries=None)
    def noop(self: Task[Any, Any]) -> None:
        """Do nothing."""

    @app.task(name=DONE_TASK, bind=True, ignore_result=True, max_retries=None)
    def done(self: Task[Any, Any], run_id: str) -> None:
        """Announce the end of a bare run, as Conductor's last node publishes its end event."""
        client.publish(done_channel(run_id), DONE_MESSAGE)


def _add_bare_tasks(sender: Any, **_: Any) -> None:
    """On `worker_init` (before the pool forks): the bare tasks join the worker's app."""
    redis_url = Settings.from_env().redis_url
    assert redis_url is not None, "conductor worker refuses to start without a Redis URL"
    register_bare_tasks(sender.app, redis.Redis.from_url(redis_url))


def main(argv: list[str] | None = None) -> None:
    """Run `conductor worker` unchanged (same app, settings and Celery arguments); the bare
    tasks are added to its app when the worker initialises."""
    worker_init.connect(_add_bare_tasks, weak=False)
    cli.main(["worker", *(sys.argv[1:] if argv is None else argv)])


class BenchWorkerProcess(WorkerProcess):
    """`python -m benchmarks.worker`, started as `WorkerProcess` starts `conductor worker`."""

    entry_point = ("-m", "benchmarks.worker")


if __name__ == "__main__":
    main()
