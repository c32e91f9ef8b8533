"""Whether the tests run in CI: there a missing prerequisite fails a test instead of skipping it."""

from __future__ import annotations

import os

_TRUE = frozenset({"true", "1", "yes"})


def in_ci() -> bool:
    """CI=true (any case; `.ci/run` exports it, as CI services do)."""
    return os.environ.get("CI", "").strip().lower() in _TRUE
