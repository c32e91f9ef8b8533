"""Running `shell-command`'s program: in its own session with CPU and memory limits, its
pipes pumped without blocking within a byte cap, and its whole process group killed at the
deadline, on cancel and when it exits."""

from __future__ import annotations

import contextlib
import os
import resource
import selectors
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from nodes.errors import NodeError

if TYPE_CHECKING:
    from nodes.shell_command import ShellCommandParameters

MIB = 1024 * 1024
READ_CHUNK_BYTES = 64 * 1024
POLL_S = 0.02  # how often the exit of the program is checked while its pipes stay quiet
KILL_GRACE_S = 0.5  # between `killSignal` and SIGKILL; below Celery's 1 s soft-limit margin
DRAIN_S = 0.25  # for what is left in pipes after the kill (held open only by escaped processes)
_EXITED = object()  # selector data of the pidfd


@dataclass
class Stream:
    """One captured output stream, keeping at most `limit` bytes."""

    limit: int
    data: bytearray = field(default_factory=bytearray)
    truncated: bool = False

    def feed(self, chunk: bytes) -> None:
        room = self.limit - len(self.data)
        if len(chunk) > room:
            self.truncated = True
        self.data += chunk[: max(room, 0)]


@dataclass(frozen=True)
class Finished:
    """What became of the program."""

    returncode: int
    stdout: Stream
    stderr: Stream
    timed_out: bool


@dataclass(frozen=True)
class Limits:
    """Resource limits set in the child between fork and exec."""

    cpu: tuple[int, int]
    memory: tuple[int, int]

    @classmethod
    def of(cls, params: ShellCommandParameters) -> Limits:
        cpu = _within_hard(resource.RLIMIT_CPU, params.cpuLimitSeconds, params.cpuLimitSeconds + 1)
        memory_bytes = params.memoryLimitMb * MIB
        return cls(cpu, _within_hard(resource.RLIMIT_AS, memory_bytes, memory_bytes))

    def apply(self) -> None:
        """Runs in the child between fork and exec: two system calls, no locks."""
        resource.setrlimit(resource.RLIMIT_CPU, self.cpu)
        resource.setrlimit(resource.RLIMIT_AS, self.memory)


def _within_hard(kind: int, soft: int, hard: int) -> tuple[int, int]:
    """(soft, hard) lowered to the worker's own hard limit: a child may not raise it."""
    current = resource.getrlimit(kind)[1]
    if current == resource.RLIM_INFINITY:
        return soft, hard
    return min(soft, current), min(hard, current)


def execute(
    argv: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    params: ShellCommandParameters,
    deadline: float,
    stop: threading.Event,
) -> Finished:
    """Start the program in its own session, talk to it until it exits or the deadline passes,
    and kill whatever is left of its process group in every case."""
    process = _spawn(argv, cwd, env, params)
    pipes = _Pipes(process, (params.stdin or "").encode(), params.maxBuffer)
    try:
        timed_out = not pipes.pump_until_exit(deadline, stop)
        if timed_out:
            _signal_group(process.pid, signal.Signals[params.killSignal])
            pipes.pump_until_exit(time.monotonic() + KILL_GRACE_S)
        _signal_group(process.pid, signal.SIGKILL)  # nothing the program started outlives it
        pipes.drain(time.monotonic() + DRAIN_S)
    finally:
        _signal_group(process.pid, signal.SIGKILL)  # also on a soft time limit or other error
        pipes.close()
        returncode = process.wait()
    return Finished(returncode, pipes.stdout, pipes.stderr, timed_out)


def _spawn(
    argv: list[str], cwd: Path, env: dict[str, str], params: ShellCommandParameters
) -> subprocess.Popen[bytes]:
    output = subprocess.PIPE if params.captureOutput else subprocess.DEVNULL
    try:
        return subprocess.Popen(
            argv,
            executable=_executable(argv[0]),
            stdin=subprocess.PIPE if params.stdin is not None else subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            cwd=cwd,
            env=env,
            start_new_session=True,
            close_fds=True,
            preexec_fn=Limits.of(params).apply,  # noqa: PLW1509  (two setrlimit calls, no locks)
        )
    except FileNotFoundError:
        raise NodeError(f"program {argv[0]!r} not found", retryable=False) from None
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        raise NodeError(f"cannot start {argv[0]!r}: {exc}", retryable=False) from None


def _executable(program: str) -> str:
    """A program named without a `/`, found on the worker's PATH: a PATH set by the node (or
    arriving on an input) cannot change which program runs."""
    if "/" in program:
        return program  # relative to the working directory, or absolute
    found = shutil.which(program, path=worker_path())
    if found is None:
        raise NodeError(f"program {program!r} not found on the worker's PATH", retryable=False)
    return found


def worker_path() -> str:
    """The worker's own PATH, where programs are looked up."""
    return os.environ.get("PATH") or os.defpath


class _Pipes:
    """Feeds stdin and reads stdout and stderr without blocking, within the byte cap."""

    def __init__(self, process: subprocess.Popen[bytes], stdin: bytes, limit: int) -> None:
        self.process = process
        self.pending = memoryview(stdin)
        self.stdout = Stream(limit)
        self.stderr = Stream(limit)
        self.selector = selectors.DefaultSelector()
        for pipe, stream in ((process.stdout, self.stdout), (process.stderr, self.stderr)):
            if pipe is not None:
                os.set_blocking(pipe.fileno(), False)
                self.selector.register(pipe.fileno(), selectors.EVENT_READ, stream)
        if process.stdin is not None:
            os.set_blocking(process.stdin.fileno(), False)
            self.selector.register(process.stdin.fileno(), selectors.EVENT_WRITE, None)
        self.pidfd = _pidfd(process.pid)  # wakes the selector when the program exits
        if self.pidfd is not None:
            self.selector.register(self.pidfd, selectors.EVENT_READ, _EXITED)

    def pump_until_exit(self, deadline: float, stop: threading.Event | None = None) -> bool:
        """Move data until the program exits (True), or the deadline passes or `stop` is set
        (False)."""
        while not _has_exited(self.process):
            left = deadline - time.monotonic()
            if left <= 0 or (stop is not None and stop.is_set()):
                return False
            self.pump(min(POLL_S, left))
        return True

    def drain(self, deadline: float) -> None:
        """Read what is left until every pipe is closed or the deadline passes."""
        if self.pidfd is not None and self.pidfd in self.selector.get_map():
            self.selector.unregister(self.pidfd)
        while self.selector.get_map() and time.monotonic() < deadline:
            self.pump(POLL_S)

    def pump(self, timeout_s: float) -> None:
        if not self.selector.get_map():
            time.sleep(timeout_s)
            return
        for key, _ in self.selector.select(timeout_s):
            fd = int(key.fd)
            if key.data is _EXITED:
                self.selector.unregister(fd)  # it stays readable: stop watching it
            elif key.data is None:
                self._write(fd)
            else:
                self._read(fd, key.data)

    def _read(self, fd: int, stream: Stream) -> None:
        try:
            chunk = os.read(fd, READ_CHUNK_BYTES)
        except BlockingIOError:
            return
        if chunk:
            stream.feed(chunk)
        else:
            self.selector.unregister(fd)

    def _write(self, fd: int) -> None:
        try:
            written = os.write(fd, self.pending[:READ_CHUNK_BYTES])
        except BlockingIOError:
            return
        except BrokenPipeError:  # the program does not read its stdin: fine
            written = len(self.pending)
        self.pending = self.pending[written:]
        if not self.pending:
            self.selector.unregister(fd)
            assert self.process.stdin is not None
            self.process.stdin.close()

    def close(self) -> None:
        self.selector.close()
        if self.pidfd is not None:
            os.close(self.pidfd)
        for pipe in (self.process.stdin, self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()


def _pidfd(pid: int) -> int | None:
    """A descriptor that becomes readable when `pid` exits (Linux 5.3+), else None: polling."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _has_exited(process: subprocess.Popen[bytes]) -> bool:
    """Whether the program exited, leaving it unreaped: its pid, the process group's id,
    cannot be reused before the group is killed."""
    if not hasattr(os, "waitid"):  # macOS: reaps it, a small pid-reuse window remains
        return process.poll() is not None
    try:
        return os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    # ProcessLookupError: the group is gone; PermissionError: only a zombie is left (macOS)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
