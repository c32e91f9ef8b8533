"""A Celery beat scheduler whose schedule lives in Redis (storage/schedules.py): any number of
`conductor beat` processes may run; each tick is claimed, and fired, by exactly one."""

from __future__ import annotations

import logging
import socket
import uuid
from typing import Any, ClassVar

from celery import Celery
from celery.beat import Scheduler
from kombu.exceptions import OperationalError

from conductor.schedules import ScheduleFirer
from storage.schedules import UNREACHABLE, RedisSchedules

log = logging.getLogger(__name__)
RETRY_AFTER_S = 1.0
# Redis unreachable, for the schedules or for sending a fire (kombu's error).
RETRIED: tuple[type[Exception], ...] = (*UNREACHABLE, OperationalError)


class RedisScheduleScheduler(Scheduler):
    """Celery beat's scheduler, reading Conductor's schedules from Redis on every pass (a
    schedule added, paused or removed takes effect on the next pass, with no restart)."""

    firer: ClassVar[ScheduleFirer]

    def setup_schedule(self) -> None:
        """Nothing to load: the schedules are read from Redis on each pass."""

    def tick(self, *args: Any, **kwargs: Any) -> float:
        """One pass over the schedules; the seconds until the next."""
        try:
            return self.firer.tick()
        except RETRIED as exc:  # Redis restarting: try again shortly
            log.warning("schedules unreachable, retrying: %s", exc)
            return RETRY_AFTER_S

    @property
    def info(self) -> str:
        """What beat's banner shows as the scheduler."""
        return f"schedules in Redis (beat id {self.firer.beat_id})"


def scheduler_class(app: Celery, store: RedisSchedules) -> type[RedisScheduleScheduler]:
    """The scheduler class `celery beat` instantiates, bound to `store`."""
    beat_id = f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
    firer = ScheduleFirer(app, store, beat_id)
    return type("ConductorScheduler", (RedisScheduleScheduler,), {"firer": firer})
