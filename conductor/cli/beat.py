"""`conductor beat`: Celery beat over the schedules in Redis (run one or several)."""

from __future__ import annotations

import click

from conductor.beat_scheduler import scheduler_class
from conductor.cli.shared_redis import redis_url, shared_settings
from conductor.services import Services
from storage.schedules import RedisSchedules


@click.command()
@click.option("--loglevel", default="INFO", show_default=True)
def beat(loglevel: str) -> None:
    """Run Celery beat for `conductor schedule` schedules (needs CONDUCTOR_REDIS_URL).

    Several beat processes may run at once (say one per host): each tick fires once.
    """
    settings = shared_settings()
    app = Services.from_settings(settings, name="beat").celery
    store = RedisSchedules.connect(redis_url(settings), settings.redis_master)
    store.client.ping()  # an unreachable Redis is exit 3 now, not a retry loop
    scheduler = scheduler_class(app, store)
    app.Beat(scheduler=scheduler, loglevel=loglevel, max_interval=1).run()  # type: ignore[arg-type]
