"""Running JavaScript evaluations in helper processes, on a wall-clock deadline.

QuickJS 2021 cannot interrupt a regular expression (a ReDoS runs until the process is killed),
counts its time limit in CPU time, and some built-ins (JSON.stringify of a value nested some
100,000 deep) recurse in C without a stack check, so they crash the process. In a helper
process, a crash is a clean node failure and the deadline is wall time: the helper is killed at
it. A helper serves one evaluation at a time and is reused (forking one per evaluation costs
several milliseconds); one that is killed or crashes is replaced on the next evaluation.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import math
import os
import resource
import select
import signal
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nodes.errors import NodeError, ScriptError

Handler = Callable[[dict[str, Any]], str]
_HEADER = struct.Struct("!Q")  # the length of each message, before its JSON
_READ_CHUNK_BYTES = 1 << 16
_ALARM_MARGIN_S = 2  # a helper outliving its deadline this long (its parent gone) dies
MAX_IDLE_HELPERS = 2
_CRASH_HINT = "values nested very deeply (JSON.stringify of deep data) are the usual cause"
_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


class HelperPool:
    """Helper processes that run `handler` on requests, one request at a time each."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self._idle: list[_Helper] = []
        self._lock = threading.Lock()
        self._owner = os.getpid()

    def run(self, request: dict[str, Any], time_limit_s: float) -> str:
        """The handler's text for `request`, or the NodeError it raised; TIMEOUT (not
        retried) once `time_limit_s` of wall time pass; a ScriptError when the helper dies."""
        deadline = time.monotonic() + time_limit_s
        message = json.dumps({"request": request, "limit_s": time_limit_s}).encode()
        helper = self._acquire()
        try:
            try:
                helper.send(message)
            except OSError:  # it died while idle: a new one takes the request
                helper.kill()
                helper = _Helper.start(self.handler)
                helper.send(message)
            reply = helper.receive(deadline)
        except BaseException:
            helper.kill()  # also on a soft time limit raised while waiting
            raise
        if reply is None:
            helper.kill()
            raise NodeError(
                f"JavaScript ran past its time limit of {time_limit_s:.3g} s (wall time)",
                code="TIMEOUT",
                retryable=False,
            )
        if reply == b"":
            status = helper.kill()
            raise ScriptError(f"JavaScript crashed its engine ({_how(status)}); {_CRASH_HINT}")
        self._release(helper)
        return _outcome(reply)

    def _acquire(self) -> _Helper:
        with self._lock:
            if self._owner != os.getpid():  # a forked copy of the process: not its helpers
                self._idle, self._owner = [], os.getpid()
            while self._idle:
                helper = self._idle.pop()
                if helper.alive():
                    return helper
                helper.kill()
        return _Helper.start(self.handler)

    def _release(self, helper: _Helper) -> None:
        with self._lock:
            if self._owner == os.getpid() and len(self._idle) < MAX_IDLE_HELPERS:
                self._idle.append(helper)
                return
        helper.kill()


@dataclass
class _Helper:
    """One helper process and the two pipes to it."""

    pid: int
    to_helper: int
    from_helper: int
    done: bool = False

    @classmethod
    def start(cls, handler: Handler) -> _Helper:
        requests_r, requests_w = os.pipe()
        replies_r, replies_w = os.pipe()
        # PR_SET_PDEATHSIG fires when the forking *thread* ends: ask for it only from the main
        # thread (a worker's node code), never from a short-lived thread that would take a
        # reused helper with it.
        parent = os.getpid() if threading.current_thread() is threading.main_thread() else 0
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the helper; checked through its replies
            _serve(handler, requests_r, replies_w, parent)
        os.close(requests_r)
        os.close(replies_w)
        return cls(pid, requests_w, replies_r)

    def alive(self) -> bool:
        """Whether it still runs; one that ended is reaped and closed (its pid is not ours
        to signal any more)."""
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(self.pid, os.WNOHANG)[0] == 0:
                return True
        self.done = True
        self._close()
        return False

    def send(self, message: bytes) -> None:
        _write_all(self.to_helper, _HEADER.pack(len(message)) + message)

    def receive(self, deadline: float) -> bytes | None:
        """The reply; b"" when the helper died first; None when the deadline passed."""
        header = _read_exactly(self.from_helper, _HEADER.size, deadline)
        if not header:
            return header
        return _read_exactly(self.from_helper, _HEADER.unpack(header)[0], deadline)

    def kill(self) -> int:
        """Kill the helper (if it still runs), close its pipes, and return its exit status."""
        if self.done:
            return 0
        self.done = True
        self._close()
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            return os.waitpid(self.pid, 0)[1]
        return 0

    def _close(self) -> None:
        for fd in (self.to_helper, self.from_helper):
            with contextlib.suppress(OSError):
                os.close(fd)


def _serve(handler: Handler, requests: int, replies: int, parent: int) -> None:  # pragma: no cover
    """The helper's loop: a request, the handler's outcome, until the parent closes the pipe."""
    code = 0
    try:
        _detach(requests, replies, parent)
        while True:
            header = _read_exactly(requests, _HEADER.size, None)
            if not header:
                break  # the parent is gone, or let the helper go
            envelope = json.loads(_read_exactly(requests, _HEADER.unpack(header)[0], None) or b"")
            signal.alarm(math.ceil(envelope["limit_s"]) + _ALARM_MARGIN_S)
            reply = json.dumps(_handle(handler, envelope["request"])).encode()
            signal.alarm(0)
            _write_all(replies, _HEADER.pack(len(reply)) + reply)
    except BaseException:
        code = 70
    finally:
        os._exit(code)


def _handle(handler: Handler, request: dict[str, Any]) -> dict[str, Any]:  # pragma: no cover
    try:
        return {"text": handler(request)}
    except NodeError as exc:
        script = isinstance(exc, ScriptError)
        return {"error": str(exc), "code": exc.code, "retryable": exc.retryable, "script": script}


def _detach(requests: int, replies: int, parent: int) -> None:  # pragma: no cover - helper
    """No core files, default signals (an alarm kills), killed with its parent, and none of
    the parent's descriptors (so another helper holds no pipe of this one open)."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGALRM):
        signal.signal(number, signal.SIG_DFL)
    # A parent that dies mid-evaluation (a pool child exiting because its node did not stop
    # when cancelled, a limited node's child killed at a cancel) cannot kill this helper: without
    # this it would run its script on to its alarm, the node's whole timeout.
    prctl = getattr(_LIBC, "prctl", None)
    if parent and prctl is not None:  # 0: forked from another thread, the alarm bounds it
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if parent and os.getppid() != parent:  # it died before prctl
        os._exit(0)
    keep = {0, 1, 2, requests, replies}
    try:
        descriptors = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        descriptors = list(range(3, 1024))
    for fd in descriptors:
        if fd not in keep:
            with contextlib.suppress(OSError):
                os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_exactly(fd: int, size: int, deadline: float | None) -> bytes | None:
    """`size` bytes; b"" at end of file; None when the deadline passes first."""
    chunks: list[bytes] = []
    missing = size
    while missing:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
        chunk = os.read(fd, min(missing, _READ_CHUNK_BYTES))
        if not chunk:
            return b""
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)


def _outcome(reply: bytes) -> str:
    """The handler's text, or the error it reported raised again."""
    outcome = json.loads(reply)
    if "error" in outcome:
        kind = ScriptError if outcome["script"] else NodeError
        raise kind(outcome["error"], code=outcome["code"], retryable=outcome["retryable"])
    text: str = outcome["text"]
    return text


def _how(status: int) -> str:
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(number).name}"
        return f"killed by signal {number}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"
