"""Node time limits shared by the node base class, the plan and the worker settings."""

from __future__ import annotations

MAX_TIMEOUT_MS = 3_600_000  # one hour; the broker's visibility timeout is set above it
DEFAULT_TIMEOUT_MS = 30_000
