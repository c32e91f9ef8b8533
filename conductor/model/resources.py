"""A node's resource limits (`resources:` beside `parameters`), and what a node run used."""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_MEMORY_MB = 1024 * 1024  # 1 TiB: above it, a typo
MAX_CPU_SECONDS = 24 * 3600


class NodeResources(BaseModel):
    """Limits for one node's run, whatever its type: it runs in a child process of the worker
    with `memoryMb` MiB of memory beyond what the worker's process already holds, at most
    `cpuSeconds` of CPU time, and a CPU weight `cpuShare` (0 to 1, against the worker's other
    processes when the CPU is contended; 1 is the default weight)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    memoryMb: int | None = Field(default=None, ge=1, le=MAX_MEMORY_MB)
    cpuSeconds: int | None = Field(default=None, ge=1, le=MAX_CPU_SECONDS)
    cpuShare: float | None = Field(default=None, gt=0, le=1)

    @model_validator(mode="after")
    def _some_limit(self) -> NodeResources:
        if self.memoryMb is None and self.cpuSeconds is None and self.cpuShare is None:
            raise ValueError("give memoryMb, cpuSeconds or cpuShare")
        return self

    def niceness(self) -> int:
        """The nice increment that gives about `cpuShare` of the default weight (each nice
        step is a factor of 1.25 in the Linux scheduler's weights)."""
        if self.cpuShare is None or self.cpuShare >= 1:
            return 0
        return min(19, round(-math.log(self.cpuShare) / math.log(1.25)))


class NodeProfile(BaseModel):
    """What one node run used: the wait in its queue (sent to started), its CPU time, the peak
    resident memory of the process that ran it, and the bytes of its inputs and output."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    queue_wait_ms: int | None = None
    cpu_ms: int | None = None
    peak_rss_bytes: int | None = None
    input_bytes: int | None = None
    output_bytes: int | None = None
    # the nodes this run waited for (for the critical path: history has no graph)
    depends_on: list[str] = Field(default_factory=list)
