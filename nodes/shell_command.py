"""`shell-command`: run a program (off unless CONDUCTOR_ALLOW_SHELL is set).

No shell ever runs. Atomiton's form names the program in `program` and its arguments in `args`,
each one argument as it is; Conductor's own form `command` is split with `shlex` into a program
and arguments, and `args` are appended. Pipes, redirection, `&&`, `;`, globbing, `~` and `$VAR`
expansion do not apply (run `sh -c '...'` explicitly when you need them). A program named
without a `/` is looked up on the worker's PATH (never on a PATH the node sets), and the program
is literal, so nothing from the input can change which program runs. It runs in its own session
with a scrubbed environment, CPU and memory limits, and a working directory inside the files
root; at the timeout, and when the program exits, its whole process group is killed.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import resource
import selectors
import shlex
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, ConfigDict, Field, ValidationInfo, field_validator

from nodes.base import Node, NodeContext, NodeParameters
from nodes.errors import NodeError, NodeStopped, NodeTimeout
from nodes.files import resolve_in_root

MIB = 1024 * 1024
READ_CHUNK_BYTES = 64 * 1024
POLL_S = 0.02  # how often the exit of the program is checked while its pipes stay quiet
KILL_GRACE_S = 0.5  # between `killSignal` and SIGKILL; below Celery's 1 s soft-limit margin
DRAIN_S = 0.25  # for what is left in pipes after the kill (held open only by escaped processes)
STDERR_TAIL_CHARS = 2000
SIGNAL_EXIT_BASE = 128  # a program killed by signal N exits with 128 + N, as shells report it
# Removed from the variables a node sets (Atomiton removes the first four): each makes the
# program, its dynamic loader or an interpreter it starts load other code.
LOADER_PREFIXES = ("LD_", "DYLD_")
LOADER_VARIABLES = frozenset({
    "LD_PRELOAD", "LD_LIBRARY_PATH", "DYLD_INSERT_LIBRARIES", "DYLD_LIBRARY_PATH", "GCONV_PATH",
    "BASH_ENV", "ENV", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONHOME", "NODE_OPTIONS", "NODE_PATH",
    "PERL5OPT", "PERL5LIB", "PERLLIB", "RUBYOPT", "RUBYLIB", "JAVA_TOOL_OPTIONS", "LUA_INIT",
})  # fmt: skip
_EXITED = object()  # selector data of the pidfd

Encoding = Literal["utf8", "base64", "binary", "ascii", "hex"]


class ShellCommandParameters(NodeParameters):
    """Parameters of `shell-command` (Atomiton's names, and Conductor's `command`)."""

    # One of the two is required (checked by `_one_program`); said so for outside checkers.
    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": ["program"]}, {"required": ["command"]}]}
    )

    command: str | None = Field(
        default=None,
        min_length=1,
        description="Conductor's form: program and arguments in one string, split with shlex",
    )
    program: str | None = Field(
        default=None,
        min_length=1,
        validate_default=True,
        description="Program to run: a name on the worker's PATH, or a path (Atomiton's form)",
    )
    args: list[str] = Field(
        default_factory=list, description="Arguments, each passed as it is (or JSON text)"
    )
    stdin: str | None = Field(default=None, description="Text written to the program's stdin")
    workingDirectory: str | None = Field(
        default=None,
        validation_alias=AliasChoices("workingDirectory", "cwd"),
        description="Working directory inside the files root (alias cwd); default: the root",
    )
    env: dict[str, str] = Field(default_factory=dict, description="Environment variables to set")
    environment: dict[str, str] = Field(
        default_factory=dict, description="More environment variables (Atomiton's name)"
    )
    throwOnError: bool | None = Field(
        default=None,
        description="Whether a non-zero exit or a timeout fails the node; default: false with "
        "`program` (Atomiton: returned in the output), true with `command`",
    )
    captureOutput: bool = Field(default=True, description="Capture stdout and stderr")
    encoding: Encoding = Field(default="utf8", description="How captured output is decoded")
    maxBuffer: int = Field(
        default=10 * MIB, ge=1024, le=100 * MIB, description="Bytes kept of stdout and of stderr"
    )
    killSignal: str = Field(
        default="SIGTERM", description="Sent to the process group at the timeout, then SIGKILL"
    )
    cpuLimitSeconds: int = Field(default=60, ge=1, le=86_400, description="RLIMIT_CPU, seconds")
    memoryLimitMb: int = Field(
        default=512, ge=16, le=1_048_576, description="RLIMIT_AS (address space), MiB"
    )
    shell: Literal["bash", "sh", "zsh", "powershell", "cmd"] = Field(
        default="bash", description="Accepted for older Atomiton flows and ignored: no shell runs"
    )
    inheritStdio: Literal[False] = Field(
        default=False, description="Accepted for older Atomiton flows; only false is supported"
    )

    @field_validator("command")
    @classmethod
    def _splits(cls, value: str | None) -> str | None:
        if value is not None and not shlex.split(value):  # ValueError on unbalanced quotes
            raise ValueError("command has no program")
        return value

    @field_validator("program")
    @classmethod
    def _one_program(cls, value: str | None, info: ValidationInfo) -> str | None:
        if "command" not in info.data:  # `command` failed validation: its error says why
            return value
        command = info.data["command"]
        if value is None and command is None:
            raise ValueError("program is required (or Conductor's command)")
        if value is not None and command is not None:
            raise ValueError("give program (with args) or command, not both")
        return value

    @field_validator("args", mode="before")
    @classmethod
    def _args_list(cls, value: Any) -> Any:
        value = _json_text(value)
        if isinstance(value, list):
            return [str(item) if isinstance(item, int | float) else item for item in value]
        return value

    @field_validator("env", "environment", mode="before")
    @classmethod
    def _env_mapping(cls, value: Any) -> Any:
        return _json_text(value)

    @field_validator("env", "environment")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not name or "=" in name or "\x00" in name or "\x00" in text:
                raise ValueError(f"invalid environment variable {name!r}")
        return value

    @field_validator("killSignal")
    @classmethod
    def _signal_name(cls, value: str) -> str:
        name = value.upper() if value.upper().startswith("SIG") else f"SIG{value.upper()}"
        if name not in signal.Signals.__members__:
            raise ValueError(f"unknown signal {value!r}")
        return name

    def argv(self) -> list[str]:
        """The program and its arguments."""
        head = [self.program] if self.program is not None else shlex.split(self.command or "")
        return [*head, *self.args]

    def throws(self) -> bool:
        """Whether a non-zero exit or a timeout fails the node instead of being returned."""
        return self.throwOnError if self.throwOnError is not None else self.program is None


class ShellCommandNode(Node[ShellCommandParameters]):
    """Run a program without a shell, confined and limited; refused unless the worker allows it."""

    type_name = "shell-command"
    # Nothing from a template or an input may choose the program (Atomiton reads `program`
    # from the input: Conductor does not). `command` is also split into arguments. Variable
    # parts go in `args`, each of which is exactly one argument.
    literal_parameters = frozenset({"command", "program"})
    description = "Run a program (off unless CONDUCTOR_ALLOW_SHELL is set)"
    parameters_model = ShellCommandParameters

    def run(self, params: ShellCommandParameters, context: NodeContext) -> Mapping[str, Any]:
        if not context.environment.allow_shell:
            raise NodeError(
                "shell-command is disabled on this worker: set CONDUCTOR_ALLOW_SHELL=1 on the "
                "workers that may run programs (and route these nodes to them with `queue:`)",
                retryable=False,
            )
        argv = params.argv()
        root = context.environment.files_root
        limit_s = min(context.remaining_s(), params.timeout / 1000)
        started = time.monotonic()
        finished = _execute(
            argv,
            cwd=_working_directory(root, params.workingDirectory),
            env=_scrubbed_env(root, {**params.env, **params.environment}),
            params=params,
            deadline=started + limit_s,
            stop=context.stop,
        )
        if context.stop.is_set():
            raise NodeStopped(f"command {argv[0]!r} stopped: the execution was cancelled")
        if finished.timed_out and params.throws():
            raise NodeTimeout(
                f"command {argv[0]!r} timed out after {limit_s:.1f} s; its process group was killed"
            )
        return _output(argv, finished, params, round((time.monotonic() - started) * 1000))


@dataclass
class _Stream:
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
class _Finished:
    """What became of the program."""

    returncode: int
    stdout: _Stream
    stderr: _Stream
    timed_out: bool


@dataclass(frozen=True)
class _Limits:
    """Resource limits set in the child between fork and exec."""

    cpu: tuple[int, int]
    memory: tuple[int, int]

    @classmethod
    def of(cls, params: ShellCommandParameters) -> _Limits:
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


def _execute(
    argv: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    params: ShellCommandParameters,
    deadline: float,
    stop: threading.Event,
) -> _Finished:
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
    return _Finished(returncode, pipes.stdout, pipes.stderr, timed_out)


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
            preexec_fn=_Limits.of(params).apply,  # noqa: PLW1509  (two setrlimit calls, no locks)
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
    found = shutil.which(program, path=_worker_path())
    if found is None:
        raise NodeError(f"program {program!r} not found on the worker's PATH", retryable=False)
    return found


def _worker_path() -> str:
    return os.environ.get("PATH") or os.defpath


class _Pipes:
    """Feeds stdin and reads stdout and stderr without blocking, within the byte cap."""

    def __init__(self, process: subprocess.Popen[bytes], stdin: bytes, limit: int) -> None:
        self.process = process
        self.pending = memoryview(stdin)
        self.stdout = _Stream(limit)
        self.stderr = _Stream(limit)
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

    def _read(self, fd: int, stream: _Stream) -> None:
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


def _working_directory(root: Path, path: str | None) -> Path:
    if path is None:
        root.mkdir(parents=True, exist_ok=True)
        return root.resolve()
    cwd = resolve_in_root(root, path)
    if not cwd.is_dir():
        raise NodeError(f"working directory {path!r} is not a folder", retryable=False)
    return cwd


def _scrubbed_env(root: Path, extra: Mapping[str, str]) -> dict[str, str]:
    """Only PATH, HOME (the files root) and LANG from the worker, plus the node's own `env` and
    `environment` less the variables that load code into the program."""
    base = {
        "PATH": _worker_path(),
        "HOME": str(root.resolve()),
        "LANG": os.environ.get("LANG") or "C.UTF-8",
    }
    kept = {
        name: text
        for name, text in extra.items()
        if name not in LOADER_VARIABLES and not name.startswith(LOADER_PREFIXES)
    }
    return {**base, **kept}


def _decode(data: bytes, encoding: Encoding) -> str:
    if encoding == "base64":
        return base64.b64encode(data).decode("ascii")
    if encoding == "hex":
        return data.hex()
    codec = {"utf8": "utf-8", "ascii": "ascii", "binary": "latin-1"}[encoding]
    return data.decode(codec, errors="replace")


def _output(
    argv: list[str], finished: _Finished, params: ShellCommandParameters, duration_ms: int
) -> dict[str, Any]:
    stdout = _decode(bytes(finished.stdout.data), params.encoding)
    stderr = _decode(bytes(finished.stderr.data), params.encoding)
    code = finished.returncode
    if code != 0 and params.throws():
        raise _failure(argv[0], code, stderr, params)
    # Killed by a signal (the timeout's too): 128 + N, never 0 as Atomiton reports it.
    exit_code = SIGNAL_EXIT_BASE - code if code < 0 else code
    return {
        "result": stdout,
        "stdout": stdout,
        "stderr": stderr,
        "exitCode": exit_code,
        "signal": _signal_name(-code) if code < 0 else None,
        "success": code == 0 and not finished.timed_out,
        "timedOut": finished.timed_out,
        "command": shlex.join(argv),
        "duration": duration_ms,
        "duration_ms": duration_ms,
        "stdoutTruncated": finished.stdout.truncated,
        "stderrTruncated": finished.stderr.truncated,
    }


def _failure(program: str, code: int, stderr: str, params: ShellCommandParameters) -> NodeError:
    if code < 0:
        return NodeError(f"command {program!r} {_signal_reason(-code, params)}", retryable=False)
    tail = stderr.strip()[-STDERR_TAIL_CHARS:] or "(no stderr)"
    return NodeError(f"command {program!r} exited with code {code}: {tail}")


def _signal_name(number: int) -> str:
    return signal.Signals(number).name if number in signal.valid_signals() else str(number)


def _signal_reason(number: int, params: ShellCommandParameters) -> str:
    name = _signal_name(number)
    if number == signal.SIGXCPU:
        return f"was killed by {name}: CPU time limit of {params.cpuLimitSeconds} s exceeded"
    if number == signal.SIGKILL:
        return (
            f"was killed by {name} (CPU time limit of {params.cpuLimitSeconds} s, "
            "or the system's out-of-memory killer)"
        )
    return f"was killed by {name}"


def _json_text(value: Any) -> Any:
    """Atomiton's editor stores lists and mappings as JSON text; accept that too."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value
