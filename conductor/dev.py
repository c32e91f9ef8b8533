"""`conductor dev`: the docker-compose topology as local processes, stopped together."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

import click

from conductor.embedded import (
    EmbeddedError,
    RedisServer,
    ServiceProcess,
    WorkerProcess,
    _die_with_parent,
    answers,
)
from conductor.model.settings import Settings, display_url

POLL_S = 0.5


class Child(Protocol):
    """What the stack needs of each process it owns."""

    process: subprocess.Popen[bytes] | None

    def stop(self) -> None:
        """Stop it and wait for it."""


class LoggedService(ServiceProcess):
    """A `conductor` command as a child process, its output appended to a log file."""

    def __init__(self, args: Sequence[str], env: Mapping[str, str], log_path: Path) -> None:
        super().__init__(args, env)
        self.log_path = log_path

    def start(self) -> LoggedService:
        """Start it (no waiting)."""
        with self.log_path.open("ab") as log:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(
                [sys.executable, "-m", "conductor", *self.args],
                env={**os.environ, **self.env},
                stdout=log,
                stderr=log,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # noqa: PLW1509  (one prctl call, no locks)
            )
        return self


@dataclass(frozen=True)
class DevOptions:
    """What `conductor dev` was asked to run."""

    data_dir: Path
    workers: int
    concurrency: int
    api_port: int
    flower_port: int | None


@dataclass
class DevStack:
    """Redis, API, workers, recorder and (optionally) Flower, started and stopped together."""

    options: DevOptions
    redis: RedisServer | None = None
    services: dict[str, LoggedService] = field(default_factory=dict)
    workers: list[WorkerProcess] = field(default_factory=list)

    @property
    def logs(self) -> Path:
        """The folder of the children's log files."""
        return self.options.data_dir / "logs"

    @property
    def env(self) -> dict[str, str]:
        """The environment that points a `conductor` command at this stack."""
        assert self.redis is not None
        return {"CONDUCTOR_REDIS_URL": self.redis.url, "CONDUCTOR_DATA_DIR": str(self.data_dir)}

    @property
    def data_dir(self) -> Path:
        """Where history, blobs, files, Blueprints, Redis' data and the logs live."""
        return self.options.data_dir

    def start(self) -> None:
        """Start every process; the API (and Flower) answer when this returns."""
        self.logs.mkdir(parents=True, exist_ok=True)
        self.redis = RedisServer(self.data_dir / "redis", appendonly=True).start()
        self._service("recorder", ["recorder", "--name", "dev"])
        for number in range(1, self.options.workers + 1):
            name = f"worker-{number}"
            worker = WorkerProcess(
                self.redis.url,
                concurrency=self.options.concurrency,
                env=self.env,
                name=f"dev-{number}@%h",
                log_path=self.logs / f"{name}.log",
            )
            self.workers.append(worker.start())
        port = str(self.options.api_port)
        self._service("api", ["api", "--host", "127.0.0.1", "--port", port])
        if self.options.flower_port is not None:
            flower_port = str(self.options.flower_port)
            self._service("flower", ["flower", "--address", "127.0.0.1", "--port", flower_port])
        self._wait_http("api", f"{self.api_url}/healthz")
        if self.options.flower_port is not None:
            self._wait_http("flower", f"{self.flower_url}/healthcheck")

    @property
    def api_url(self) -> str:
        """The API's base URL."""
        return f"http://127.0.0.1:{self.options.api_port}"

    @property
    def flower_url(self) -> str | None:
        """Flower's URL, when it runs."""
        port = self.options.flower_port
        return None if port is None else f"http://127.0.0.1:{port}"

    def _service(self, name: str, args: list[str]) -> None:
        log = self.logs / f"{name}.log"
        self.services[name] = LoggedService(args, self.env, log).start()

    def _wait_http(self, name: str, url: str, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not answers(url):
            dead = self.exited()
            if dead or time.monotonic() > deadline:
                log = self.logs / f"{dead or name}.log"
                raise EmbeddedError(f"{name} did not start at {url}; see {log}")
            time.sleep(0.05)

    def exited(self) -> str | None:
        """The name of a child that has stopped on its own, if any."""
        for name, child in self._children():
            if child.process is None or child.process.poll() is not None:
                return name
        return None

    def _children(self) -> Iterator[tuple[str, Child]]:
        if self.redis is not None:
            yield "redis", self.redis
        yield from self.services.items()
        for number, worker in enumerate(self.workers, 1):
            yield f"worker-{number}", worker

    def stop(self) -> None:
        """Stop everything: front ends, then workers (warm, in parallel), recorder, Redis."""
        for name in ("flower", "api"):
            if name in self.services:
                self.services.pop(name).stop()
        with ThreadPoolExecutor(max_workers=max(1, len(self.workers))) as pool:
            list(pool.map(WorkerProcess.stop, self.workers))
        self.workers.clear()
        if "recorder" in self.services:  # last: it records the workers' final events
            self.services.pop("recorder").stop()
        if self.redis is not None:
            self.redis.stop()  # SIGTERM: the append-only file is flushed


@contextmanager
def exclusive(data_dir: Path) -> Iterator[None]:
    """Hold a lock on the data dir: two Redis servers must not share one append-only file."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / "dev.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise click.UsageError(
                f"another `conductor dev` uses {data_dir}; pass --data-dir"
            ) from None
        yield


def banner(stack: DevStack, out: IO[str] | None = None) -> None:
    """Print where everything is and the environment that talks to it."""
    settings = Settings.from_env({**os.environ, **stack.env})
    lines = [
        f"Conductor dev stack, data in {stack.data_dir}",
        f"  API      {stack.api_url}   (docs: {stack.api_url}/docs, console: {stack.api_url}/ui/)",
    ]
    if stack.flower_url:
        lines.append(f"  Flower   {stack.flower_url}")
    assert stack.redis is not None
    lines += [
        f"  Redis    {stack.redis.url}   (append-only file in {stack.redis.directory})",
        f"  history  {display_url(settings.history_url)}",
        f"  workers  {len(stack.workers)} x {stack.options.concurrency} processes",
        f"  logs     {stack.logs}",
        "Talk to it from another shell:",
        *(f"  export {name}={value}" for name, value in stack.env.items()),
        "Ctrl-C stops everything.",
    ]
    for line in lines:
        click.echo(line, file=out)


def run_stack(options: DevOptions) -> int:
    """Run the stack until SIGINT/SIGTERM (0) or until a child dies (1)."""
    # The handler only appends (no lock): an Event.set() from a handler that interrupts this
    # thread inside Event.wait() can deadlock on the event's own lock, and then no signal
    # stops the stack.
    signals: list[int] = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda number, _: signals.append(number))
    stack = DevStack(options)
    try:
        stack.start()
        banner(stack)
        while not signals:
            time.sleep(POLL_S)  # a signal ends the sleep early; its handler has run
            if not signals and (dead := stack.exited()):
                click.echo(f"{dead} stopped on its own (see {stack.logs}); stopping", err=True)
                return 1
        return 0
    except EmbeddedError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        click.echo("stopping...", err=True)
        stack.stop()
