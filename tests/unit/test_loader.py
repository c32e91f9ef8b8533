"""conductor/model/loader.py: Blueprint files load safely, or are rejected with a clear problem."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from conductor.model.blueprint import Blueprint
from conductor.model.loader import (
    MAX_BYTES,
    blueprint_from_data,
    load_blueprint_file,
    load_blueprint_text,
    parse_document,
)
from conductor.model.problems import ErrorCode, InvalidBlueprint, Problem
from tests.conftest import ATOMITON_FLOWS

FLOWS_DIR = ATOMITON_FLOWS
FLOW_FILES = sorted(FLOWS_DIR.glob("*.flow.yaml"))

HEADER = 'id: "bp-1"\nname: "Test"\n'


def rejected(text: str, *, json_only: bool = False) -> list[Problem]:
    """The problems a document is rejected with (fails the test if it loads)."""
    with pytest.raises(InvalidBlueprint) as caught:
        load_blueprint_text(text, json_only=json_only)
    assert caught.value.problems, "InvalidBlueprint must carry at least one problem"
    return caught.value.problems


def only_problem(text: str, *, json_only: bool = False) -> Problem:
    """The single problem a document is rejected with."""
    problems = rejected(text, json_only=json_only)
    assert len(problems) == 1, problems
    return problems[0]


def nested_yaml(depth: int) -> str:
    """A Blueprint whose nesting is `depth` levels, counting the document mapping."""
    return HEADER + "x: " + "[" * (depth - 1) + "]" * (depth - 1) + "\n"


def nested_json(depth: int) -> str:
    """The JSON twin of `nested_yaml`."""
    return '{"id": "a", "name": "b", "x": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"


# --- the real Atomiton flows -------------------------------------------------------------


def test_the_three_atomiton_fixtures_exist() -> None:
    assert [path.name for path in FLOW_FILES] == [
        "data-transform.flow.yaml",
        "hello-world.flow.yaml",
        "image-processor.flow.yaml",
    ]


@pytest.mark.parametrize("path", FLOW_FILES, ids=lambda p: p.name)
def test_atomiton_flow_loads_and_keeps_every_field(path: Path) -> None:
    blueprint = load_blueprint_file(path)
    raw = parse_document(path.read_text(encoding="utf-8"))
    assert isinstance(raw, dict)
    assert blueprint.id == raw["id"]
    assert blueprint.name == raw["name"]
    assert [node.id for node in blueprint.nodes] == [node["id"] for node in raw["nodes"]]
    assert [(e.source, e.target) for e in blueprint.edges] == [
        (e["source"], e["target"]) for e in raw["edges"]
    ]
    # Nothing the editor wrote is lost: the model dumps back to exactly the parsed document.
    assert blueprint.model_dump(exclude_unset=True) == raw
    assert Blueprint.model_validate(blueprint.model_dump()) == blueprint


def test_hello_world_keeps_ui_fields_as_extras() -> None:
    blueprint = load_blueprint_file(FLOWS_DIR / "hello-world.flow.yaml")
    first = blueprint.nodes[0]
    extra = first.model_extra or {}
    assert extra["position"] == {"x": 100, "y": 200}
    assert extra["inputPorts"][0]["id"] == "input"
    assert extra["outputPorts"][0]["id"] == "output"
    assert extra["metadata"]["icon"] == "pencil-line"
    assert extra["version"] == "1.0.0"
    assert first.parameters["values"]["timestamp"] == "{{$now}}"
    assert blueprint.metadata["tags"] == ["example", "beginner", "hello-world"]
    assert blueprint.edges[0].sourceHandle == "output"
    assert blueprint.edges[0].targetHandle == "input"
    dumped = first.model_dump()
    assert dumped["position"] == {"x": 100, "y": 200}


def test_image_processor_keeps_variables_and_settings() -> None:
    blueprint = load_blueprint_file(FLOWS_DIR / "image-processor.flow.yaml")
    assert blueprint.variables["concurrency"].defaultValue == 4
    assert blueprint.variables["concurrency"].type == "number"
    assert blueprint.variables["inputFolder"].defaultValue == "/images/input"
    assert blueprint.timeout_ms() == 60000
    assert blueprint.settings["ui"] == {"color": "#9C27B0"}
    assert (blueprint.model_extra or {})["category"] == "media"


def test_quoted_timestamps_in_fixture_metadata_stay_strings() -> None:
    blueprint = load_blueprint_file(FLOWS_DIR / "data-transform.flow.yaml")
    assert blueprint.metadata["created"] == "2025-01-15T00:00:00Z"


@pytest.mark.parametrize("path", FLOW_FILES, ids=lambda p: p.name)
def test_json_file_loads_like_its_yaml(path: Path, tmp_path: Path) -> None:
    raw = parse_document(path.read_text(encoding="utf-8"))
    target = tmp_path / (path.name.removesuffix(".yaml") + ".json")
    target.write_text(json.dumps(raw), encoding="utf-8")
    assert load_blueprint_file(target) == load_blueprint_file(path)


def test_json_file_is_parsed_as_json_not_yaml(tmp_path: Path) -> None:
    # Valid YAML but not JSON: a .json file must be held to JSON.
    target = tmp_path / "flow.json"
    target.write_text("id: a\nname: b\n", encoding="utf-8")
    with pytest.raises(InvalidBlueprint, match="not valid JSON"):
        load_blueprint_file(target)


# --- values keep their JSON types ---------------------------------------------------------


def test_unquoted_dates_and_timestamps_stay_strings() -> None:
    text = HEADER + (
        "created: 2025-01-15\n"
        "modified: 2025-01-15T10:20:30Z\n"
        "metadata: {released: 2024-02-03}\n"
        "nodes:\n"
        "  - id: a\n"
        "    type: delay\n"
        "    parameters: {when: 2024-12-31 23:59:59}\n"
    )
    blueprint = load_blueprint_text(text)
    extra = blueprint.model_extra or {}
    assert extra["created"] == "2025-01-15"
    assert extra["modified"] == "2025-01-15T10:20:30Z"
    assert blueprint.metadata["released"] == "2024-02-03"
    assert blueprint.nodes[0].parameters["when"] == "2024-12-31 23:59:59"
    json.dumps(blueprint.model_dump())  # everything is plain JSON data


# --- unsafe YAML ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "tag"),
    [
        ("!!python/object:os.system {}", "python/object"),
        ("!!python/object/apply:os.system ['echo hi']", "python/object/apply"),
        ("!!binary aGVsbG8=", "binary"),
        ("!custom thing", "!custom"),
    ],
)
def test_yaml_tags_are_rejected(value: str, tag: str) -> None:
    problem = only_problem(HEADER + f"x: {value}\n")
    assert problem.path == "$"
    assert problem.code is ErrorCode.VALIDATION_FAILED
    assert "tags are not allowed" in problem.message
    assert tag in problem.message


def test_billion_laughs_alias_bomb_is_rejected_quickly() -> None:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for level in range(1, 10):
        refs = ", ".join([f"*a{level - 1}"] * 10)
        lines.append(f"a{level}: &a{level} [{refs}]")
    started = time.monotonic()
    problem = only_problem(HEADER + "\n".join(lines) + "\n")
    assert time.monotonic() - started < 2.0
    assert problem.path == "$"
    assert "aliases are expanded" in problem.message


def test_moderate_alias_use_is_fine() -> None:
    text = (
        HEADER + "defaults: &d {timeout: 5000}\nnodes:\n  - {id: a, type: delay, parameters: *d}\n"
    )
    blueprint = load_blueprint_text(text)
    assert blueprint.nodes[0].parameters == {"timeout": 5000}


@pytest.mark.parametrize("value", ["&x [*x]", "&x {key: *x}"])
def test_self_referencing_alias_is_rejected(value: str) -> None:
    problem = only_problem(HEADER + f"loop: {value}\n")
    assert problem.path == "$"
    assert "refers to itself" in problem.message


def test_nesting_of_exactly_100_levels_is_accepted() -> None:
    # The document mapping is level 1, then 99 nested lists.
    blueprint = load_blueprint_text(nested_yaml(100))
    assert "x" in (blueprint.model_extra or {})


@pytest.mark.parametrize("depth", [101, 150, 300])
def test_yaml_nesting_deeper_than_100_is_rejected(depth: int) -> None:
    problem = only_problem(nested_yaml(depth))
    assert problem.path == "$"
    assert problem.message.startswith("nesting is deeper than 100 levels (at line ")


@pytest.mark.parametrize("depth", [101, 300])
def test_json_nesting_deeper_than_100_is_rejected(depth: int) -> None:
    problem = only_problem(nested_json(depth), json_only=True)
    assert problem.path == "$"
    assert problem.message.startswith("nesting is deeper than 100 levels (at line ")


@pytest.mark.parametrize("json_only", [False, True], ids=["yaml", "json"])
def test_extremely_deep_nesting_is_rejected_not_crashing(json_only: bool) -> None:
    text = nested_json(5000) if json_only else nested_yaml(5000)
    problem = only_problem(text, json_only=json_only)
    assert problem.path == "$"


@pytest.mark.parametrize("json_only", [False, True], ids=["yaml", "json"])
def test_extremely_deep_nesting_names_the_depth_limit(json_only: bool) -> None:
    text = nested_json(5000) if json_only else nested_yaml(5000)
    problem = only_problem(text, json_only=json_only)
    assert problem.message.startswith("nesting is deeper than 100 levels")


def test_file_over_5_mib_is_rejected_without_parsing(tmp_path: Path) -> None:
    target = tmp_path / "big.flow.yaml"
    padding = "# " + "x" * 1000 + "\n"
    target.write_text(HEADER + padding * (MAX_BYTES // len(padding) + 1), encoding="utf-8")
    assert target.stat().st_size > MAX_BYTES
    with pytest.raises(InvalidBlueprint) as caught:
        load_blueprint_file(target)
    (problem,) = caught.value.problems
    assert problem.path == "$"
    assert "larger than 5 MiB" in problem.message


def test_text_over_5_mib_is_rejected() -> None:
    problem = only_problem(HEADER + "#" + "x" * MAX_BYTES + "\n")
    assert "larger than 5 MiB" in problem.message


def test_file_just_under_the_limit_loads(tmp_path: Path) -> None:
    target = tmp_path / "padded.flow.yaml"
    body = HEADER + "# pad\n"
    target.write_text(body + "#" * (MAX_BYTES - len(body) - 1) + "\n", encoding="utf-8")
    assert target.stat().st_size == MAX_BYTES
    assert load_blueprint_file(target).id == "bp-1"


def test_missing_file_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    with pytest.raises(InvalidBlueprint, match="cannot read"):
        load_blueprint_file(tmp_path / "nope.yaml")


# --- malformed documents -----------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["id: [unclosed\n", "id: a\nname: b\n  bad indent: x\n y: z\n", '{"id": "a"'],
)
def test_malformed_yaml_is_rejected(text: str) -> None:
    problem = only_problem(text)
    assert problem.path == "$"
    assert problem.message.startswith("not valid YAML")


def test_malformed_json_is_rejected() -> None:
    problem = only_problem('{"id": "a", "name": ', json_only=True)
    assert problem.message.startswith("not valid JSON")


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "42\n", "", "null\n"])
def test_non_mapping_document_is_rejected(text: str) -> None:
    problem = only_problem(text)
    assert problem.path == "$"
    assert "must be a mapping" in problem.message


@pytest.mark.parametrize(
    ("text", "path"),
    [("name: b\n", "id"), ("id: a\n", "name"), ("id: ''\nname: b\n", "id")],
)
def test_missing_or_empty_id_and_name_are_named(text: str, path: str) -> None:
    problem = only_problem(text)
    assert problem.path == path
    assert problem.code is ErrorCode.VALIDATION_FAILED


def test_missing_id_and_name_are_both_reported() -> None:
    problems = rejected("description: nothing else\n")
    assert sorted(p.path for p in problems) == ["id", "name"]


def test_bad_node_field_is_named_by_path() -> None:
    problems = rejected(HEADER + "nodes:\n  - {id: a, type: delay}\n  - {id: b}\n")
    assert [p.path for p in problems] == ["nodes[1].type"]


def test_problem_text_names_path_and_code() -> None:
    with pytest.raises(InvalidBlueprint) as caught:
        load_blueprint_text("id: a\n")
    assert str(caught.value) == "name: Field required [VALIDATION_FAILED]"


def test_data_from_elsewhere_is_depth_checked_too() -> None:
    deep: dict[str, object] = {"id": "x", "name": "X"}
    cursor = deep
    for _ in range(150):
        cursor["metadata"] = {}
        cursor = cursor["metadata"]  # type: ignore[assignment]
    with pytest.raises(InvalidBlueprint, match="deeper than 100"):
        blueprint_from_data(deep)
