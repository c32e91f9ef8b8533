"""How large and how deep a node's output may be.

Sizes are those of the output as JSON text, counted in characters while walking the value
(strings by their length, numbers as a few characters): cheap, and stopped as soon as the
budget is spent, so an output of 800 MB is refused without being built or serialized. A value
referenced many times counts each time, as JSON writes it each time.
"""

from __future__ import annotations

from typing import Any

from nodes.errors import NodeError

MIB = 1024 * 1024
DEFAULT_MAX_OUTPUT_BYTES = 64 * MIB
SIZE_VARIABLE = "CONDUCTOR_MAX_OUTPUT_MB"
# Levels of lists and mappings in a node's output (the output mapping itself is level 1). The
# output is stored and sent inside records a few levels deep, and JSON encoders stop near 255.
MAX_OUTPUT_DEPTH = 128
_SCALAR_CHARS = 8  # a number, true, false or null, with its separator


class OutputTooLarge(NodeError):
    """An output over the size limit; the same input gives the same output: not retried."""

    code = "MEMORY_LIMIT_EXCEEDED"
    retryable = False


class OutputTooDeep(NodeError):
    """An output nested deeper than MAX_OUTPUT_DEPTH, which cannot be stored."""

    code = "SERIALIZATION_FAILED"
    retryable = False


class OutputBudget:
    """A running count of output characters against a limit, and a depth check."""

    def __init__(
        self,
        limit_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
        *,
        max_depth: int = MAX_OUTPUT_DEPTH,
        what: str = "the node's output",
    ) -> None:
        self.limit_bytes = limit_bytes
        self.max_depth = max_depth
        self.what = what
        self.used = 0
        self._sizes: dict[int, int] = {}  # containers measured already, by id

    def charge_text(self, chars: int) -> None:
        """Count `chars` more characters; raise once past the limit."""
        self.used += chars
        if self.used > self.limit_bytes:
            limit_mib = self.limit_bytes / MIB
            raise OutputTooLarge(
                f"{self.what} is larger than {limit_mib:g} MiB, the limit set by "
                f"{SIZE_VARIABLE}: it was stopped before being stored"
            )

    def charge(self, value: Any, depth: int = 1) -> None:
        """Count `value` as JSON at nesting level `depth`; raise past either limit."""
        if isinstance(value, str):
            self.charge_text(len(value) + 3)
        elif isinstance(value, dict | list):
            self._charge_container(value, depth)
        else:
            self.charge_text(_SCALAR_CHARS)

    def _charge_container(self, value: dict[Any, Any] | list[Any], depth: int) -> None:
        if depth > self.max_depth:
            raise OutputTooDeep(
                f"{self.what} is nested deeper than {self.max_depth} levels of lists and "
                "mappings, which cannot be stored"
            )
        known = self._sizes.get(id(value))
        if known is not None:
            self.charge_text(known)
            return
        before = self.used
        self.charge_text(2)
        if isinstance(value, dict):
            for key, item in value.items():
                self.charge_text(len(str(key)) + 3)
                self.charge(item, depth + 1)
        else:
            for item in value:
                self.charge(item, depth + 1)
        self._sizes[id(value)] = self.used - before
