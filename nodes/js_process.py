"""Running one JavaScript evaluation in a forked child process, on a wall-clock deadline.

QuickJS 2021 cannot interrupt a regular expression (a ReDoS runs until the process is killed),
counts its time limit in CPU time, and some built-ins (JSON.stringify of a value nested some
100,000 deep) recurse in C without a stack check, so they crash the process. In a child, a
crash is a clean node failure and the deadline is wall time: the child is killed at it.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import select
import signal
import time
from collections.abc import Callable
from typing import Any

from nodes.errors import NodeError, ScriptError

_READ_CHUNK_BYTES = 1 << 16
_PR_SET_PDEATHSIG = 1
# The child's CPU limit past its wall-clock deadline: a backstop when its parent is killed.
_CPU_BACKSTOP_S = 2


def run_isolated(work: Callable[[], str], time_limit_s: float) -> str:
    """`work()`'s text, computed in a forked child killed after `time_limit_s` of wall time.
    A NodeError raised by `work` is raised here; a crashed child is a ScriptError (never
    retried: the same input crashes it again)."""
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child; its outcome is checked through the parent
        os.close(reader)
        _child(work, writer, time_limit_s)
    os.close(writer)
    try:
        payload = _read_until(reader, time.monotonic() + time_limit_s)
    finally:
        os.close(reader)
        status = _reap(pid)
    if payload is None:
        raise NodeError(
            f"JavaScript ran past its time limit of {time_limit_s:.3g} s (wall time)",
            code="TIMEOUT",
            retryable=False,
        )
    return _outcome(payload, status)


def _child(work: Callable[[], str], writer: int, time_limit_s: float) -> None:  # pragma: no cover
    """Run `work`, write its outcome as JSON, and leave without any cleanup of the parent's."""
    code = 0
    try:
        _detach(time_limit_s)
        try:
            outcome: dict[str, Any] = {"text": work()}
        except NodeError as exc:
            script = isinstance(exc, ScriptError)
            outcome = {"error": str(exc), "code": exc.code, "retryable": exc.retryable}
            outcome["script"] = script
        data = json.dumps(outcome).encode()
        view = memoryview(data)
        while view:
            view = view[os.write(writer, view) :]
    except BaseException:
        code = 70
    finally:
        os._exit(code)


def _detach(time_limit_s: float) -> None:  # pragma: no cover - runs in the child
    """No core files; die with the parent; a CPU limit as a backstop; default signals."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    cpu_s = int(time_limit_s) + _CPU_BACKSTOP_S
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGALRM):
        signal.signal(number, signal.SIG_DFL)
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _read_until(reader: int, deadline: float) -> bytes | None:
    """Everything the child writes, or None when the deadline passes first."""
    chunks: list[bytes] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        ready, _, _ = select.select([reader], [], [], left)
        if not ready:
            continue
        chunk = os.read(reader, _READ_CHUNK_BYTES)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _reap(pid: int) -> int:
    """Kill the child if it still runs, and collect its exit status."""
    with contextlib.suppress(ProcessLookupError):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        os.kill(pid, signal.SIGKILL)
    return os.waitpid(pid, 0)[1]


def _outcome(payload: bytes, status: int) -> str:
    """The child's text, or the error it reported, or a ScriptError for its crash."""
    if not payload:
        raise ScriptError(f"JavaScript crashed its engine ({_how(status)}); {_HINT}")
    outcome = json.loads(payload)
    if "error" in outcome:
        kind = ScriptError if outcome["script"] else NodeError
        raise kind(outcome["error"], code=outcome["code"], retryable=outcome["retryable"])
    text: str = outcome["text"]
    return text


_HINT = "values nested very deeply (JSON.stringify of deep data) are the usual cause"


def _how(status: int) -> str:
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(number).name}"
        return f"killed by signal {number}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"
