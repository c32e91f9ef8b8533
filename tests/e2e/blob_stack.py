"""A private stack for the blob tests: its own Redis, data folder, blob store (a folder or a
bucket on moto's S3 server) and a one-child worker whose processes can be measured."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
import redis

from conductor.embedded import RedisServer, WorkerProcess
from conductor.model.loader import load_blueprint_text
from conductor.model.settings import Settings
from conductor.services import Services
from conductor.waiting import wait_for_result
from storage.presence import RedisPresence
from tests.s3_server import S3Server

MIB = 1024 * 1024


@dataclass
class BlobStack:
    """Settings and services on the private stack, and its worker."""

    settings: Settings
    env: dict[str, str]
    services: Services
    worker: WorkerProcess

    @property
    def files(self) -> Path:
        """The files root nodes read and write."""
        return self.settings.files_root

    def run(self, text: str, timeout_s: float = 120) -> dict[str, Any]:
        """Submit a Blueprint and wait for its result."""
        plan = self.services.dispatcher.submit(load_blueprint_text(text), {})
        events = self.services.backend.event_source()
        return wait_for_result(events, self.services.stores, plan.execution_id, timeout_s)

    def store_bytes(self) -> int:
        """What the blob store holds."""
        return sum(info.size for info in self.services.stores.blobs.scan())

    def processes(self) -> list[psutil.Process]:
        """The worker's main process and its pool children."""
        assert self.worker.process is not None
        main = psutil.Process(self.worker.process.pid)
        return [main, *main.children(recursive=True)]


@contextmanager
def blob_stack(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest, **extra: str
) -> Iterator[BlobStack]:
    """The stack with blobs in a folder (`file`) or a fresh bucket (`s3`)."""
    env = {"CONDUCTOR_DATA_DIR": str(tmp_path), "CONDUCTOR_FINISHED_TTL_S": "2", **extra}
    if kind == "s3":
        server: S3Server = request.getfixturevalue("s3_server")
        env |= {**server.env(), "CONDUCTOR_BLOB_URL": f"s3://{server.new_bucket()}/blobs"}
    with pytest.MonkeyPatch.context() as patch, RedisServer(tmp_path / "redis") as server_:
        env["CONDUCTOR_REDIS_URL"] = server_.url
        for name, value in env.items():  # the test process opens the same store
            patch.setenv(name, value)
        settings = Settings.from_env(env).with_redis(server_.url)
        log = tmp_path / "worker.log"
        worker = WorkerProcess(
            server_.url, concurrency=1, env=env, name="blobs@%h", log_path=log, loglevel="INFO"
        ).start()
        services = Services.from_settings(settings)
        try:
            _wait_until_live(server_.url)
            yield BlobStack(settings, env, services, worker)
        finally:
            services.close()
            worker.stop()


def _wait_until_live(url: str, timeout_s: float = 60.0) -> None:
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + timeout_s
    try:
        while not RedisPresence(client).live():
            assert time.monotonic() < deadline, "the worker did not start"
            time.sleep(0.1)
    finally:
        client.close()


def peak_rss_bytes(process: psutil.Process) -> int:
    """The process's peak resident set (VmHWM), in bytes."""
    for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc (not Linux?)")
