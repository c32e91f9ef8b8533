"""Celery beat's scheduler over the schedules in Redis: a broker that refuses a fire is a
pass to retry, not the end of `conductor beat`; what a schedule shows as its next tick."""

from __future__ import annotations

import datetime as dt
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conductor.beat_scheduler import RETRY_AFTER_S, scheduler_class
from conductor.embedded import RedisServer
from conductor.model.schedule import Schedule
from conductor.model.settings import Settings
from conductor.schedules import schedule_view
from storage.schedules import RedisSchedules, ScheduleState
from workers.app import create_app


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RedisSchedules]:
    server = RedisServer(tmp_path / "redis").start()
    schedules = RedisSchedules.connect(server.url)
    try:
        yield schedules
    finally:
        schedules.close()
        server.stop()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_broker_that_refuses_the_fire_is_retried(store: RedisSchedules, tmp_path: Path) -> None:
    broker = f"redis://127.0.0.1:{closed_port()}/0"
    env = {"CONDUCTOR_REDIS_URL": broker, "CONDUCTOR_DATA_DIR": str(tmp_path / "data")}
    app = create_app(Settings.from_env(env))
    store.add(Schedule(name="s", blueprint_id="b", every_s=1, created_ms=0))
    scheduler = scheduler_class(app, store)(app=app)

    assert scheduler.tick() == RETRY_AFTER_S  # not an exception that ends beat
    assert store.get("s").fires == 0  # the tick is still due


def test_fires_leave_no_result_subscriptions(store: RedisSchedules, tmp_path: Path) -> None:
    url = store.client.connection_pool.connection_kwargs
    broker = f"redis://{url['host']}:{url['port']}/0"
    env = {"CONDUCTOR_REDIS_URL": broker, "CONDUCTOR_DATA_DIR": str(tmp_path / "data")}
    app = create_app(Settings.from_env(env))
    store.add(Schedule(name="s", blueprint_id="b", every_s=1, created_ms=0))
    scheduler = scheduler_class(app, store)(app=app)
    scheduler.tick()

    assert store.get("s").fires > 0  # up to a minute of ticks, each sent
    assert store.client.pubsub_channels() == []  # beat waits on no result channel


def test_a_view_never_shows_a_next_tick_in_the_past() -> None:
    # What GET /v1/schedules shows for a schedule no beat has fired since its creation.
    before = time.time()
    rule = Schedule(name="s", blueprint_id="b", every_s=60, created_ms=0)
    view = schedule_view(ScheduleState(rule, paused=False, last_tick_s=0, fires=0))
    assert dt.datetime.fromisoformat(view["next_tick"]).timestamp() > before
