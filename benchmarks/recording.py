"""The recorder on Conductor's side of every benchmark, as the README tells users to run one
wherever workers run: it reads and deletes each event Conductor's scripts add, on the same Redis
and the same cores. Bare Celery emits no events, so the recorder idles while the bare side runs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import redis

from conductor.embedded import ServiceProcess
from storage import keys

READY_TIMEOUT_S = 30.0


@contextmanager
def recorder(env: Mapping[str, str], folder: Path) -> Iterator[ServiceProcess | None]:
    """`conductor recorder` into a SQLite history under `folder`, reading the events stream
    before this yields (its consumer group exists)."""
    env = {**env, "CONDUCTOR_HISTORY_URL": f"sqlite:///{folder / 'bench-history.sqlite3'}"}
    process = ServiceProcess(["recorder", "--name", "bench"], env).start()
    client = redis.Redis.from_url(env["CONDUCTOR_REDIS_URL"])
    try:
        _wait_for_group(client)
        yield process
    finally:
        client.close()
        process.stop()


@contextmanager
def maybe_recorder(
    env: Mapping[str, str], folder: Path, *, enabled: bool
) -> Iterator[ServiceProcess | None]:
    """`recorder(...)`, or nothing when `enabled` is false (to measure what it costs)."""
    if not enabled:
        yield None
        return
    with recorder(env, folder) as process:
        yield process


def _wait_for_group(client: redis.Redis) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not _has_group(client):
        if time.monotonic() > deadline:
            raise RuntimeError(f"no recorder on the events stream after {READY_TIMEOUT_S} s")
        time.sleep(0.05)


def _has_group(client: redis.Redis) -> bool:
    try:
        groups = client.xinfo_groups(keys.EVENTS_STREAM)
    except redis.ResponseError:  # no stream yet
        return False
    return any(_text(group["name"]) == keys.RECORDER_GROUP for group in groups)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
