"""The output limits, checked on every node output before it is stored (and before any blob
is written): size (CONDUCTOR_MAX_OUTPUT_MB) and nesting depth (MAX_OUTPUT_DEPTH)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nodes.base import NodeEnvironment
from nodes.output_budget import OutputBudget


def check_output(output: Mapping[str, Any], environment: NodeEnvironment) -> None:
    """Raise OutputTooLarge or OutputTooDeep when `output` breaks a limit."""
    OutputBudget(environment.max_output_bytes).charge(dict(output))
