"""Running one node in a child process with resource limits (a node's `resources:`).

The child is a fork of the worker's process: it runs the node's code as the worker would, with
RLIMIT_AS at its own address space plus `memoryMb`, RLIMIT_CPU at `cpuSeconds` and a nice
value for `cpuShare`, and sends its progress and its outcome back through a pipe. Whatever the
node does (allocate without end, spin, crash in C), only the child dies: the worker's process
reads the child's end, fails the node with MEMORY_LIMIT_EXCEEDED or TIMEOUT naming the limit,
and takes its next task. The child's CPU time and peak memory come from its exit (wait4).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import resource
import select
import signal
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from conductor.model.blob_text import BlobText
from conductor.model.resources import NodeResources
from nodes.errors import NodeError, NodeStopped, NodeTimeout
from workers.invocation import Invocation

MIB = 1024 * 1024
_HEADER = struct.Struct("!Q")
_READ_CHUNK_BYTES = 1 << 16
_ALARM_MARGIN_S = 2  # a child outliving its deadline this long (its parent gone) dies
_POLL_S = 0.1  # how often a quiet child's parent looks at the stop event
# A process killed at its CPU limit may show a little less in its accounting (tick sampling).
_CPU_SLACK = 0.9


@dataclass(frozen=True)
class ChildUsage:
    """What the child used, from its exit status (its reaped children included)."""

    cpu_s: float
    peak_rss_bytes: int


@dataclass
class LimitedRun:
    """One limited run: call `run`, then read `usage`."""

    call: Invocation
    limits: NodeResources
    usage: ChildUsage | None = None

    def run(self) -> Mapping[str, Any]:
        """The node's output, or the NodeError that ended it."""
        reader, writer = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child; checked through what it sends
            os.close(reader)
            _child(self.call, self.limits, writer)
        os.close(writer)
        try:
            reply = self._talk(pid, reader)
        finally:
            os.close(reader)
            status = _reap(pid)
        rusage = status[1]
        self.usage = ChildUsage(rusage.ru_utime + rusage.ru_stime, rusage.ru_maxrss * 1024)
        if reply is not None:
            return _outcome(reply)
        raise self._death(status[0])

    def _talk(self, pid: int, reader: int) -> dict[str, Any] | None:
        """Relay progress until the child's outcome (None: it died first). Past the node's
        deadline, or once the node must stop, the child is killed."""
        context = self.call.context
        buffer = bytearray()
        try:
            while True:
                left = context.deadline - time.monotonic()
                if left <= 0:
                    _kill(pid)
                    raise NodeTimeout("the node ran past its timeout", retryable=False)
                if context.stop.is_set():
                    _kill(pid)
                    raise NodeStopped("the node was stopped")
                if not select.select([reader], [], [], min(left, _POLL_S))[0]:
                    continue
                chunk = os.read(reader, _READ_CHUNK_BYTES)
                if not chunk:
                    return None
                buffer += chunk
                for message in _messages(buffer):
                    if "progress" not in message:
                        return message
                    context.report_progress(message["progress"], message["message"])
        except BaseException:
            _kill(pid)  # also on a soft time limit raised while waiting
            raise

    def _death(self, status: int) -> NodeError:
        """Why a child that sent no outcome ended: its CPU limit, its memory, or a crash."""
        limits = self.limits
        used = self.usage.cpu_s if self.usage else 0.0
        signalled = os.WIFSIGNALED(status)
        number = os.WTERMSIG(status) if signalled else 0
        if limits.cpuSeconds is not None and (
            number == signal.SIGXCPU or (number == signal.SIGKILL and used >= limits.cpuSeconds)
        ):
            message = (
                f"the node used its CPU time limit of {limits.cpuSeconds} s "
                f"(resources.cpuSeconds; it used {used:.2f} s)"
            )
            return NodeError(message, code="TIMEOUT", retryable=False)
        how = _how(status)
        if limits.memoryMb is not None:
            message = (
                f"the node's process ended ({how}) within its memory limit of "
                f"{limits.memoryMb} MB (resources.memoryMb): it most likely ran out of memory"
            )
            return NodeError(message, code="MEMORY_LIMIT_EXCEEDED", retryable=False)
        return NodeError(f"the node's process ended ({how}) before its outcome", retryable=False)


def _child(call: Invocation, limits: NodeResources, writer: int) -> None:  # pragma: no cover
    """In the child: set the limits, run the node, send its outcome, exit."""
    code = 0
    try:
        _prepare(limits, call.context.remaining_s())

        def progress(fraction: float, message: str) -> None:
            _send(writer, {"progress": fraction, "message": message})

        context = dataclasses.replace(call.context, on_progress=progress)
        _send(writer, _run(Invocation(call.node, call.params, context), limits))
    except BaseException:
        code = 70
    finally:
        os._exit(code)


def _run(call: Invocation, limits: NodeResources) -> dict[str, Any]:  # pragma: no cover
    """The node's outcome as a message: its output, or its error."""
    try:
        output = dict(call.run())
        json.dumps(output, default=blob_reference)  # it travels as JSON: fail here, with its code
        return {"output": output}
    except MemoryError:
        return _memory_error(limits)
    except NodeError as exc:
        if isinstance(exc.__cause__, MemoryError):
            return _memory_error(limits)
        if limits.cpuSeconds is not None and (
            _cpu_used_s() >= limits.cpuSeconds * _CPU_SLACK or "SIGXCPU" in str(exc)
        ):
            return _cpu_error(limits)  # a program it ran (or a helper) hit the limit
        return {
            "error": str(exc),
            "code": exc.code,
            "retryable": exc.retryable,
            "node_id": exc.node_id,
        }
    except (TypeError, ValueError) as exc:
        message = f"the node's output is not JSON: {exc}"
        return {"error": message, "code": "SERIALIZATION_FAILED", "retryable": False}


def _cpu_used_s() -> float:  # pragma: no cover - in the child
    """The most CPU time this process, or the children it reaped together, used."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return max(own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime)


def _cpu_error(limits: NodeResources) -> dict[str, Any]:  # pragma: no cover - in the child
    message = f"the node used its CPU time limit of {limits.cpuSeconds} s (resources.cpuSeconds)"
    return {"error": message, "code": "TIMEOUT", "retryable": False}


def _memory_error(limits: NodeResources) -> dict[str, Any]:  # pragma: no cover
    message = f"the node ran out of its memory limit of {limits.memoryMb} MB (resources.memoryMb)"
    return {"error": message, "code": "MEMORY_LIMIT_EXCEEDED", "retryable": False}


def _prepare(limits: NodeResources, remaining_s: float) -> None:  # pragma: no cover
    """Default signals (the worker's handlers are not the child's), no core files, an alarm
    past the deadline in case the parent is gone, and the limits."""
    # (SIGCHLD too: reaped children must add their CPU time to this process's account)
    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGALRM, signal.SIGCHLD):
        signal.signal(number, signal.SIG_DFL)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    signal.alarm(math.ceil(remaining_s) + _ALARM_MARGIN_S)
    if limits.cpuSeconds is not None:
        _lower(resource.RLIMIT_CPU, limits.cpuSeconds, limits.cpuSeconds + 1)
    if limits.memoryMb is not None:
        allowed = address_space_bytes() + limits.memoryMb * MIB
        _lower(resource.RLIMIT_AS, allowed, allowed)
    if limits.niceness():
        os.nice(limits.niceness())


def _lower(kind: int, soft: int, hard: int) -> None:  # pragma: no cover
    """Set a limit, never above the process's own hard limit (a child may not raise it)."""
    current = resource.getrlimit(kind)[1]
    if current != resource.RLIM_INFINITY:
        soft, hard = min(soft, current), min(hard, current)
    resource.setrlimit(kind, (soft, hard))


def address_space_bytes() -> int:
    """This process's virtual memory size (VmSize), or 0 where /proc does not say it."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def blob_reference(value: Any) -> Any:
    """A large string kept in the blob store travels as its stored reference: the worker's
    process stores it as is, and reading the output back resolves it (storage.blobs)."""
    if isinstance(value, BlobText):
        return value.reference()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _send(fd: int, message: dict[str, Any]) -> None:  # pragma: no cover - in the child
    data = json.dumps(message, default=blob_reference).encode()
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


def _messages(buffer: bytearray) -> list[dict[str, Any]]:
    """The whole messages at the start of `buffer`, removed from it."""
    found: list[dict[str, Any]] = []
    while len(buffer) >= _HEADER.size:
        size = _HEADER.unpack_from(buffer)[0]
        end = _HEADER.size + size
        if len(buffer) < end:
            break
        found.append(json.loads(bytes(buffer[_HEADER.size : end])))
        del buffer[:end]
    return found


def _outcome(reply: dict[str, Any]) -> Mapping[str, Any]:
    if "output" in reply:
        output: dict[str, Any] = reply["output"]
        return output
    raise NodeError(
        reply["error"],
        code=reply["code"],
        retryable=reply["retryable"],
        node_id=reply.get("node_id"),
    )


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _reap(pid: int) -> tuple[int, resource.struct_rusage]:
    """The child's exit status and resource usage (waiting for it to end)."""
    while True:
        try:
            _, status, usage = os.wait4(pid, 0)
            return status, usage
        except InterruptedError:  # pragma: no cover - retried by Python itself since 3.5
            continue


def _how(status: int) -> str:
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(number).name}"
        return f"killed by signal {number}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"
