"""Measuring one node run: queue wait, CPU time, peak resident memory, input/output bytes.

CPU time is the node thread's own plus that of the child processes reaped while it ran (a
`shell-command` program, a limited node's child). Peak memory is the high-water mark of the
process that ran the node: the worker's process, its mark reset when the node starts (Linux's
/proc/self/clear_refs), or a limited node's own child.
"""

from __future__ import annotations

import contextlib
import json
import resource
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from conductor.model.resources import NodeProfile
from storage.blobs import stored_bytes

SENT_HEADER = "conductor_sent_ms"  # stamped on every message as it is published


def sent_stamp(headers: dict[str, Any] | None, **_: Any) -> None:
    """Celery's before_task_publish: note when the message left, for its queue wait."""
    if headers is not None:
        headers[SENT_HEADER] = int(time.time() * 1000)


def queue_wait_ms(sent_ms: Any, eta: Any, started_ms: int) -> int | None:
    """From the message's publication (or its ETA, for a delayed retry) to the node's start."""
    if not isinstance(sent_ms, int | float):
        return None
    ready_ms = float(sent_ms)
    if isinstance(eta, str):
        with contextlib.suppress(ValueError):
            ready_ms = max(ready_ms, datetime.fromisoformat(eta).timestamp() * 1000)
    return max(0, int(started_ms - ready_ms))


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _children_peak_bytes() -> int:
    """The largest resident set of any child this process reaped (it only grows)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024


def reset_peak() -> bool:
    """Reset this process's resident-memory high-water mark (Linux 4.0+); False elsewhere."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")
    except OSError:
        return False
    return True


def peak_rss_bytes() -> int | None:
    """This process's resident-memory high-water mark (VmHWM), from /proc."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


@dataclass
class Meter:
    """Started with the node's attempt; `profile` says what the run used."""

    queue_wait_ms: int | None = None
    depends_on: list[str] = field(default_factory=list)
    input_bytes: int | None = None
    child_peak_bytes: int | None = None  # set by a limited run
    _cpu_s: float = field(default_factory=time.thread_time)
    _children_s: float = field(default_factory=_children_cpu_s)
    _peak_reset: bool = field(default_factory=reset_peak)
    _children_peak: int = field(default_factory=_children_peak_bytes)

    def count_inputs(self, upstream: dict[str, str], inputs: dict[str, Any]) -> None:
        """The bytes of what the node received: its upstream outputs (or the execution's
        inputs for a node without wires)."""
        if upstream:
            self.input_bytes = sum(stored_bytes(text) for text in upstream.values())
        else:
            self.input_bytes = len(_json_bytes(inputs))

    def profile(self, output: str | None) -> dict[str, Any]:
        """The run's NodeProfile fields (`output`: the stored output, when there is one)."""
        cpu_s = time.thread_time() - self._cpu_s + _children_cpu_s() - self._children_s
        peak = self.child_peak_bytes
        if peak is None and self._peak_reset:
            peak = peak_rss_bytes()
            grown = _children_peak_bytes()
            if peak is not None and grown > self._children_peak:  # a program it ran, larger
                peak = max(peak, grown)
        found = NodeProfile(
            queue_wait_ms=self.queue_wait_ms,
            cpu_ms=round(cpu_s * 1000),
            peak_rss_bytes=peak,
            input_bytes=self.input_bytes,
            output_bytes=None if output is None else stored_bytes(output),
            depends_on=self.depends_on,
        )
        # (an empty list would come back from Lua's JSON as {}: left out, it means none)
        return found.model_dump(
            exclude_none=True, exclude={"depends_on"} if not self.depends_on else None
        )


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), default=str).encode()
