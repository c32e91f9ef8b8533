"""Shared fixtures: a private Redis per session, and a real worker process for end-to-end tests."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from conductor.embedded import RedisServer, WorkerProcess
from conductor.model.settings import Settings
from storage.presence import RedisPresence
from tests.fixture_files import write_atomiton_data
from tests.s3_server import S3Server, running_s3_server

REPO = Path(__file__).resolve().parents[1]
ATOMITON_FLOWS = REPO / "examples" / "atomiton"  # Atomiton's three sample flows, held by the repo
NEVER_PARK_MS = "3600000"  # CONDUCTOR_PARK_DELAY_MS past the longest delay: delays sleep


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A private redis-server on a free port (never a shared instance)."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A private S3-compatible server (moto's server mode) for the session."""
    with running_s3_server() as server:
        yield server


@pytest.fixture(scope="session")
def atomiton_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Atomiton's sample data files (csv, tsv, xlsx, ods, png), built once per session."""
    return write_atomiton_data(tmp_path_factory.mktemp("atomiton-data"))


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CONDUCTOR_DATA_DIR shared by the tests and the worker (blobs, files)."""
    return tmp_path_factory.mktemp("conductor-data")


@pytest.fixture(scope="session")
def worker_env(data_dir: Path) -> dict[str, str]:
    """Environment for worker processes and CLI runs (http-request may reach the tests'
    loopback servers; a long `delay` stands for a node that runs long and holds its worker,
    never parked: tests/e2e/test_signals.py tests parking)."""
    return {
        "CONDUCTOR_DATA_DIR": str(data_dir),
        "CONDUCTOR_HTTP_ALLOW": "127.0.0.1",
        "CONDUCTOR_PARK_DELAY_MS": NEVER_PARK_MS,
    }


@pytest.fixture(scope="session")
def worker(
    redis_server: RedisServer, worker_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    """`conductor worker` as a separate process on the session's Redis."""
    log = tmp_path_factory.mktemp("logs") / "worker.log"
    process = WorkerProcess(
        redis_server.url, concurrency=2, env=worker_env, name="e2e@%h", log_path=log
    ).start()
    _wait_until_live(redis_server.url, "e2e@")
    yield process
    process.stop()
    if os.environ.get("CONDUCTOR_SHOW_WORKER_LOG"):
        print(log.read_text())


def _wait_until_live(url: str, prefix: str, timeout_s: float = 60.0) -> None:
    """Until a worker named `prefix...` announces itself: a submission before that is told
    NO_WORKER, and the first test would measure the worker's start-up instead of its work."""
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + timeout_s
    try:
        while not any(w.name.startswith(prefix) for w in RedisPresence(client).live()):
            assert time.monotonic() < deadline, f"no worker {prefix}* announced itself"
            time.sleep(0.1)
    finally:
        client.close()


@pytest.fixture
def settings(redis_server: RedisServer, data_dir: Path) -> Settings:
    """Client settings pointing at the session's Redis."""
    return Settings.from_env(
        {"CONDUCTOR_REDIS_URL": redis_server.url, "CONDUCTOR_DATA_DIR": str(data_dir)}
    )


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A client of the session's Redis."""
    client = redis.Redis.from_url(redis_server.url)
    yield client
    client.close()
