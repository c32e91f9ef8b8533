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
import json
import os
import shlex
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, ConfigDict, Field, ValidationInfo, field_validator

from nodes.base import Node, NodeContext, NodeParameters
from nodes.errors import NodeError, NodeStopped, NodeTimeout
from nodes.files import resolve_in_root
from nodes.json_text import parse_json
from nodes.shell_process import MIB, Finished, execute, worker_path

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
    variable_parts_hint = "put variable parts in args"
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
        finished = execute(
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
        "PATH": worker_path(),
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
    argv: list[str], finished: Finished, params: ShellCommandParameters, duration_ms: int
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
            return parse_json(value)
        except json.JSONDecodeError:
            return value
    return value
