"""conductor/model/loader.py: numbers JSON cannot carry, non-UTF-8 bytes and huge documents are
refused with where they are, quickly, instead of a traceback or a silent change."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conductor.model.loader import MAX_EXPANDED_NODES, load_blueprint_file, load_blueprint_text
from conductor.model.problems import InvalidBlueprint, Problem

HEADER = 'id: "bp-1"\nname: "Test"\n'
NODE = "nodes:\n  - id: a\n    type: delay\n    parameters: {ms: %s}\n"


def problems_of(text: str, *, json_only: bool = False) -> list[Problem]:
    with pytest.raises(InvalidBlueprint) as caught:
        load_blueprint_text(text, json_only=json_only)
    return caught.value.problems


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", ".NaN"])
def test_yaml_nan_and_infinity_are_refused_with_their_path(value: str) -> None:
    (problem,) = problems_of(HEADER + NODE % value)
    assert problem.path == "nodes[0].parameters.ms"
    assert "not a number JSON can carry" in problem.message


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_json_nan_and_infinity_are_refused_with_their_path(value: str) -> None:
    text = '{"id": "a", "name": "b", "nodes": [{"id": "n", "type": "delay", "parameters": '
    text += '{"ms": ' + value + "}}]}"
    (problem,) = problems_of(text, json_only=True)
    assert problem.path == "nodes[0].parameters.ms"


@pytest.mark.parametrize("json_only", [False, True], ids=["yaml", "json"])
def test_a_5000_digit_integer_is_refused_with_its_path(json_only: bool) -> None:
    digits = "9" * 5000
    if json_only:
        text = json.dumps({"id": "a", "name": "b", "variables": {"n": {"defaultValue": 1}}})
        text = text.replace('"defaultValue": 1', f'"defaultValue": {digits}')
    else:
        text = HEADER + f"variables:\n  n: {{defaultValue: {digits}}}\n"
    (problem,) = problems_of(text, json_only=json_only)
    assert problem.path == "variables.n.defaultValue"
    assert "5000 digits" in problem.message


def test_non_utf8_file_is_refused_with_the_byte_offset(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(HEADER.encode() + b"description: caf\xe9\n")
    with pytest.raises(InvalidBlueprint) as caught:
        load_blueprint_file(path)
    (problem,) = caught.value.problems
    offset = len(HEADER.encode()) + len(b"description: caf")
    assert f"byte 0xe9 at offset {offset} (line 3, column 17)" in problem.message


def test_yaml_tags_are_still_refused_with_their_position() -> None:
    (problem,) = problems_of(HEADER + "x: !!python/object:os.system ls\n")
    assert "YAML tags are not allowed" in problem.message
    assert "line 3" in problem.message


def test_a_huge_flat_yaml_list_is_refused_before_parsing() -> None:
    text = HEADER + "items:\n" + "".join(f"  - item{i}\n" for i in range(300_000))
    started = time.perf_counter()
    (problem,) = problems_of(text)
    # Parsing it would take about 30 s; the estimate refuses it at once (a loose bound: the
    # figures are in benchmarks/loader.py).
    assert time.perf_counter() - started < 1.0
    assert f"more than {MAX_EXPANDED_NODES} values" in problem.message
    assert "JSON" in problem.message


def test_a_5_mib_json_blueprint_loads_in_bounded_memory(tmp_path: Path) -> None:
    nodes = [
        {"id": f"n{i}", "type": "edit-fields", "parameters": {"values": {"m": f"hi {i}"}}}
        for i in range(50_000)
    ]
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"id": "big", "name": "big", "nodes": nodes}))
    assert path.stat().st_size > 4 * 1024 * 1024
    script = (
        "import resource, sys\n"
        "from pathlib import Path\n"
        "from conductor.model.loader import load_blueprint_file\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(len(load_blueprint_file(Path(sys.argv[1])).nodes))\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print((after - before) // 1024)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True
    )
    count, grown_mb = done.stdout.split()
    assert count == "50000"
    assert int(grown_mb) < 200
