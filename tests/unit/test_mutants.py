"""The curated mutant list (tests/mutants) stays applicable: every snippet is still in its file
exactly once and every named test still exists, so `make mutants` cannot rot silently."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.mutants import MUTANTS, Mutant
from tests.mutants.__main__ import REPO, MutantError, mutated


def test_mutant_names_are_unique() -> None:
    names = [mutant.name for mutant in MUTANTS]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("mutant", MUTANTS, ids=[mutant.name for mutant in MUTANTS])
def test_each_mutant_applies_and_names_existing_tests(mutant: Mutant) -> None:
    assert mutated(mutant, REPO) != (REPO / mutant.path).read_text()
    assert mutant.tests, "a mutant no test is meant to notice proves nothing"
    for test in mutant.tests:
        path, _, name = test.partition("::")
        name = name.split("[")[0]  # a parametrized case is its function
        tree = ast.parse((REPO / path).read_text())
        defined = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
        assert name in defined, f"{mutant.name}: no test {name} in {path}"


def test_a_snippet_that_is_gone_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "module.py").write_text("x = 1\nx = 1\n")
    gone = Mutant("gone", "-", "module.py", "y = 2", "y = 3", ("t.py::test",))
    twice = Mutant("twice", "-", "module.py", "x = 1", "x = 2", ("t.py::test",))
    with pytest.raises(MutantError, match="found 0 times"):
        mutated(gone, tmp_path)
    with pytest.raises(MutantError, match="found 2 times"):
        mutated(twice, tmp_path)
