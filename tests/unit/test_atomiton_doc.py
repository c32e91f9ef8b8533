"""docs/atomiton.md keeps up with the code: every parameter (and alias) each of Atomiton's ten
node types accepts has its row, so a new parameter cannot ship without its difference noted."""

from __future__ import annotations

import re

import pytest

from nodes.base import BASE_PARAMETERS
from nodes.registry import default_registry
from tests.conftest import REPO

DOC = (REPO / "docs" / "atomiton.md").read_text(encoding="utf-8")
SECTIONS = dict(re.findall(r"^## ([a-z-]+)\n(.*?)(?=^## |\Z)", DOC, re.MULTILINE | re.DOTALL))
ATOMITON_TYPES = [
    "edit-fields", "transform", "http-request", "file-system", "spreadsheet",
    "shell-command", "image", "loop", "parallel", "group",
]  # fmt: skip


@pytest.mark.parametrize("type_name", ATOMITON_TYPES)
def test_every_parameter_has_a_row(type_name: str) -> None:
    section = SECTIONS[type_name]
    assert "| Parameter | Atomiton | Conductor |" in section
    assert "| Output key | Atomiton | Conductor |" in section
    schema = default_registry().get(type_name).json_schema()
    # The base parameters are in "What holds for every node" (group redefines two: its rows).
    own = set(schema["properties"]) - (BASE_PARAMETERS if type_name != "group" else set())
    missing = sorted(name for name in own if f"`{name}`" not in section)
    assert not missing, f"docs/atomiton.md, ## {type_name}: no row for {missing}"


VERDICTS = ("same", "differs", "added", "Conductor only", "Conductor's own")


def test_every_row_says_same_or_how_it_differs() -> None:
    for type_name in ATOMITON_TYPES:
        for row in re.findall(r"^\| `[^\n]*\|$", SECTIONS[type_name], re.MULTILINE):
            cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", row)[1:-1]]
            if len(cells) == 3:  # name | Atomiton | Conductor
                assert cells[2].startswith(VERDICTS), (type_name, row)
