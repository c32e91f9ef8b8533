"""A Redis primary, a replica and three Sentinels as real processes on free loopback ports, and
a fault-test stack (tests/e2e/fault_stack.py) that reaches Redis through them."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import redis

from conductor.embedded import RedisServer, WorkerProcess, free_port, redis_server_binary
from storage.redis_client import redis_client
from tests.e2e.fault_stack import Stack, wait_until

MASTER = "conductor"
QUORUM = 2
DOWN_AFTER_MS = 1000  # small: the test's failover takes seconds, not Sentinel's default 30 s


class SentinelProcess:
    """`redis-server --sentinel` watching the primary on `primary_port`."""

    def __init__(self, directory: Path, primary_port: int) -> None:
        self.directory = directory
        self.port = free_port()
        self.primary_port = primary_port
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> SentinelProcess:
        """Write its config (Sentinel rewrites it as it learns) and start it."""
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self.directory / "sentinel.conf"
        config.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.directory}\n"
            f"sentinel monitor {MASTER} 127.0.0.1 {self.primary_port} {QUORUM}\n"
            f"sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {MASTER} 5000\n"
            f"sentinel parallel-syncs {MASTER} 1\n"
        )
        self.process = subprocess.Popen(
            [redis_server_binary(), str(config), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        return self

    @cached_property
    def client(self) -> redis.Redis:
        """A client of this Sentinel."""
        return redis.Redis(port=self.port, socket_timeout=2, decode_responses=True)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.client.close()


@dataclass
class SentinelGroup:
    """A primary, one replica and three Sentinels."""

    base: Path
    primary: RedisServer = field(init=False)
    replica: RedisServer = field(init=False)
    sentinels: list[SentinelProcess] = field(default_factory=list)

    def start(self) -> SentinelGroup:
        """Start every process and wait until the Sentinels know the replica and each other."""
        self.primary = RedisServer(self.base / "primary").start()
        self.replica = RedisServer(self.base / "replica", replica_of=self.primary.port).start()
        self.sentinels = [
            SentinelProcess(self.base / f"sentinel-{i}", self.primary.port).start()
            for i in range(3)
        ]
        wait_until(self._ready, "the Sentinels to find the replica and each other")
        return self

    def _ready(self) -> bool:
        try:
            states: list[dict[str, Any]] = [
                s.client.sentinel_master(MASTER)  # type: ignore[misc]
                for s in self.sentinels
            ]
        except redis.RedisError:
            return False
        return all(
            state["num-slaves"] == 1 and state["num-other-sentinels"] == len(states) - 1
            for state in states
        )

    @property
    def url(self) -> str:
        """CONDUCTOR_REDIS_URL naming the three Sentinels."""
        return ";".join(f"sentinel://127.0.0.1:{s.port}" for s in self.sentinels)

    def primary_port(self) -> int | None:
        """The primary's port as the first Sentinel that answers tells it."""
        for sentinel in self.sentinels:
            try:
                address: Any = sentinel.client.sentinel_get_master_addr_by_name(MASTER)
            except redis.RedisError:
                continue
            return int(address[1]) if address else None
        return None

    def wait_promoted(self, timeout_s: float = 30) -> float:
        """When (time.time()) the Sentinels named the replica as the new primary."""
        wait_until(lambda: self.primary_port() == self.replica.port, "a failover", timeout_s)
        return time.time()

    def stop(self) -> None:
        """Stop every process of the group."""
        for sentinel in self.sentinels:
            sentinel.stop()
        self.replica.stop()
        self.primary.stop()


@dataclass
class SentinelStack(Stack):
    """The fault-test stack with its processes on the Sentinels' URL."""

    group: SentinelGroup | None = None

    @property
    def sentinels(self) -> SentinelGroup:
        """The group this stack runs on."""
        assert self.group is not None
        return self.group

    @property
    def env(self) -> dict[str, str]:
        """The stack's environment, Redis found through the Sentinels."""
        group = self.sentinels
        return {**super().env, "CONDUCTOR_REDIS_URL": group.url, "CONDUCTOR_REDIS_MASTER": MASTER}

    @cached_property
    def client(self) -> redis.Redis:
        """A client of whichever Redis is the primary."""
        return redis_client(self.sentinels.url, master=MASTER)

    def start_worker(self, name: str, concurrency: int = 2, **env: str) -> WorkerProcess:
        """One more `conductor worker` process on the Sentinels' URL."""
        process = WorkerProcess(
            self.sentinels.url,
            concurrency=concurrency,
            env={**self.env, **env},
            name=f"{name}@%h",
            log_path=self.data_dir / f"{name}.log",
        ).start()
        self.workers.append(process)
        return process


@contextmanager
def sentinel_stack(base: Path) -> Iterator[SentinelStack]:
    """A Sentinel group, a recorder and one two-process worker, under `base`."""
    (base / "data" / "files").mkdir(parents=True)
    group = SentinelGroup(base / "redis").start()
    stack = SentinelStack(
        group.primary, base / "data", f"sqlite:///{base / 'history.sqlite3'}", group=group
    )
    try:
        stack.start_recorder()
        stack.start_worker("failover", concurrency=2)
        yield stack
    finally:
        stack.stop_all()
        group.stop()
