"""The code's shape that review keeps: no module grows past 400 lines (split it by noun)."""

from __future__ import annotations

from tests.conftest import REPO

MAX_MODULE_LINES = 400
PACKAGES = ("conductor", "storage", "workers", "nodes")


def test_no_module_is_longer_than_400_lines() -> None:
    long = {
        str(path.relative_to(REPO)): lines
        for package in PACKAGES
        for path in (REPO / package).rglob("*.py")
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}, f"split these by what they define: {long}"
