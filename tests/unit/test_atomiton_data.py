"""Atomiton compatibility of edit-fields, transform, http-request, file-system and
spreadsheet: parameters (names, defaults, ranges, JSON-string forms), and the logic that needs
no worker. The same cases through a real worker: tests/e2e/test_atomiton_data.py."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from conductor.model.loader import load_blueprint_text
from conductor.validation import find_warnings, validate
from nodes.base import NodeContext, NodeEnvironment
from nodes.edit_fields import EditFieldsNode, EditFieldsParameters
from nodes.errors import InvalidParameters, NodeError, ScriptError
from nodes.file_system import FileSystemNode
from nodes.file_system_parameters import FileSystemParameters
from nodes.files import OutsideFilesRoot, resolve_in_root
from nodes.http_request import HttpRequestParameters
from nodes.javascript import evaluate_expression
from nodes.registry import default_registry
from nodes.spreadsheet import SpreadsheetNode, SpreadsheetParameters
from nodes.transform import (
    TransformNode,
    TransformParameters,
    function_source,
    reduce_initial,
)

CSV = "name,active,amount\nAda,true,10.5\nBob,false,99\n"


def context(data: Any = None, root: Path | None = None, **inputs: Any) -> NodeContext:
    """A node context with main input `data` and files root `root`."""
    return NodeContext(
        execution_id="exec-1",
        node_id="node",
        inputs=inputs or {"default": data},
        data=data,
        deadline=time.monotonic() + 10,
        environment=NodeEnvironment(files_root=root or Path("/nonexistent")),
    )


def field_error(model: type[Any], parameters: dict[str, Any]) -> str:
    """The first validation error's field path."""
    with pytest.raises(ValidationError) as caught:
        model.model_validate(parameters)
    return ".".join(map(str, caught.value.errors()[0]["loc"]))


def blueprint(node_type: str, parameters: dict[str, Any]) -> str:
    """A one-node Blueprint, as JSON (which is YAML)."""
    node = {"id": "n", "type": node_type, "parameters": parameters}
    return json.dumps({"id": "bp", "name": "bp", "nodes": [node], "edges": []})


# --- validation: Atomiton's parameters are accepted, never warned about ----------------------

ATOMITON_PARAMETERS: list[tuple[str, dict[str, Any]]] = [
    ("edit-fields", {"values": {"message": "Hi", "timestamp": "{{$now}}"}, "keepOnlySet": False}),
    ("edit-fields", {"values": '{"a": 1}'}),
    (
        "transform",
        {
            "operation": "slice",
            "transformFunction": "item => item",
            "sortKey": "k",
            "sortDirection": "desc",
            "reduceInitial": "0",
            "groupKey": "k",
            "flattenDepth": 1,
            "limitCount": 10,
            "skipCount": 0,
            "sliceStart": 0,
            "sliceEnd": -1,
            "data": [1, 2, 3],
            "reduceFunction": "x => x",
        },
    ),
    (
        "http-request",
        {
            "method": "POST",
            "url": "https://api.example.com",
            "headers": '{"X-A": "1"}',
            "body": '{"a": 1}',
            "timeout": 30000,
            "retries": 0,
            "followRedirects": True,
            "validateSSL": True,
            "retryDelay": 1000,
        },
    ),
    (
        "file-system",
        {
            "operation": "read",
            "path": "/data/x.txt",
            "content": "x",
            "recursive": False,
            "encoding": "utf8",
            "createDirectories": False,
            "overwrite": False,
            "fullPaths": False,
        },
    ),
    (
        "spreadsheet",
        {
            "path": "/data/sample.csv",
            "data": "a,b\n1,2\n",
            "format": "csv",
            "sheetName": "Sheet1",
            "hasHeaders": True,
            "range": "A1:D10",
            "delimiter": ",",
            "skipEmptyLines": True,
        },
    ),
    ("spreadsheet", {"sheetIndex": 0, "hasHeaders": True, "delimiter": ",", "format": "xls"}),
]


@pytest.mark.parametrize(("node_type", "parameters"), ATOMITON_PARAMETERS)
def test_atomiton_parameters_validate_without_warnings(
    node_type: str, parameters: dict[str, Any]
) -> None:
    loaded = load_blueprint_text(blueprint(node_type, parameters))
    registry = default_registry()
    assert validate(loaded, registry) == []
    assert find_warnings(loaded, registry) == []


def test_atomitons_inline_transform_data_validates() -> None:
    """The issue: a transform with inline `data` could not even be validated."""
    loaded = load_blueprint_text(
        blueprint("transform", {"operation": "limit", "data": [3, 1, 2], "limitCount": 2})
    )
    assert validate(loaded, default_registry(), strict=True) == []


@pytest.mark.parametrize(
    ("model", "parameters", "field"),
    [
        (EditFieldsParameters, {"values": "[1, 2]"}, "values"),
        (EditFieldsParameters, {"values": "{not json"}, "values"),
        (EditFieldsParameters, {"keepOnlySet": "maybe"}, "keepOnlySet"),
        (TransformParameters, {"flattenDepth": 0}, "flattenDepth"),
        (TransformParameters, {"flattenDepth": 11}, "flattenDepth"),
        (TransformParameters, {"limitCount": 0}, "limitCount"),
        (TransformParameters, {"skipCount": -1}, "skipCount"),
        (TransformParameters, {"data": "[1, 2]"}, "data"),  # no JSON-string form
        (TransformParameters, {"operation": "explode"}, "operation"),
        (TransformParameters, {"sortDirection": "up"}, "sortDirection"),
        (HttpRequestParameters, {"url": "https://x.example", "headers": "[1]"}, "headers"),
        (HttpRequestParameters, {"url": "https://x.example", "headers": "{x"}, "headers"),
        (HttpRequestParameters, {"url": "https://x.example", "headers": {"a": 1}}, "headers.a"),
        (HttpRequestParameters, {"url": "not a url"}, "url"),
        (HttpRequestParameters, {}, "url"),
        (FileSystemParameters, {"path": ""}, "path"),
        (FileSystemParameters, {"path": "a", "operation": "chmod"}, "operation"),
        (SpreadsheetParameters, {"format": "numbers"}, "format"),
        (SpreadsheetParameters, {"sheetIndex": -1}, "sheet"),
        (SpreadsheetParameters, {"range": "nope"}, "range"),
    ],
)
def test_bad_values_name_their_field(
    model: type[Any], parameters: dict[str, Any], field: str
) -> None:
    assert field_error(model, parameters).startswith(field)


def test_transform_defaults_and_aliases() -> None:
    params = TransformParameters()
    assert (params.operation, params.transformFunction, params.sortDirection) == (
        "map",
        "item => item",
        "asc",
    )
    assert (params.flattenDepth, params.limitCount, params.skipCount) == (1, 10, 0)
    assert (params.sliceStart, params.sliceEnd, params.groupKey, params.data) == (
        0,
        None,
        None,
        None,
    )
    old = TransformParameters.model_validate(
        {"groupBy": "g", "limit": 3, "skip": 2, "start": 1, "end": 4}
    )
    assert (old.groupKey, old.limitCount, old.skipCount, old.sliceStart, old.sliceEnd) == (
        "g",
        3,
        2,
        1,
        4,
    )


def test_transform_counts_are_truncated_like_javascript() -> None:
    params = TransformParameters.model_validate(
        {"flattenDepth": 2.9, "limitCount": 2.5, "skipCount": 1.2, "sliceStart": 1.7}
    )
    assert (params.flattenDepth, params.limitCount, params.skipCount, params.sliceStart) == (
        2,
        2,
        1,
        1,
    )


def test_http_request_json_string_forms() -> None:
    params = HttpRequestParameters.model_validate(
        {"url": "https://x.example", "headers": '{"X-A": "1"}', "body": '{"a": 1}'}
    )
    assert params.headers == {"X-A": "1"}
    assert params.body == '{"a": 1}'  # stays text: Atomiton never decodes body
    defaults = HttpRequestParameters(url="https://x.example")
    assert (defaults.method, defaults.headers, defaults.body) == ("GET", {}, None)


def test_spreadsheet_defaults_follow_atomiton() -> None:
    params = SpreadsheetParameters()
    assert (params.path, params.data, params.format, params.sheet) == (None, None, None, None)
    assert (params.hasHeaders, params.skipEmptyLines, params.range) == (True, True, None)
    both = SpreadsheetParameters.model_validate({"sheetName": "B", "sheetIndex": 2})
    assert both.sheet == "B"  # sheetName beats sheetIndex, as in Atomiton


# --- files root as a chroot ------------------------------------------------------------------


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A files root with a secret beside it and a link out of it."""
    files = tmp_path / "files"
    (files / "data").mkdir(parents=True)
    (files / "data" / "sample.csv").write_text(CSV)
    (tmp_path / "secret.txt").write_text("secret")
    (files / "out").symlink_to(tmp_path)
    return files


@pytest.mark.parametrize(
    ("path", "inside"),
    [
        ("/data/sample.csv", "data/sample.csv"),
        ("data/sample.csv", "data/sample.csv"),
        ("//data//./sample.csv", "data/sample.csv"),
        ("/data/../data/sample.csv", "data/sample.csv"),
        ("/", ""),
        ("/etc/passwd", "etc/passwd"),
    ],
)
def test_absolute_paths_start_at_the_files_root(root: Path, path: str, inside: str) -> None:
    assert resolve_in_root(root, path) == (root / inside).resolve()


def test_a_host_path_under_the_root_is_taken_as_it_is(root: Path) -> None:
    assert resolve_in_root(root, str(root / "data" / "sample.csv")) == (
        root.resolve() / "data" / "sample.csv"
    )


@pytest.mark.parametrize(
    "path",
    [
        "../secret.txt",
        "/../secret.txt",
        "/data/../../secret.txt",
        "/out/secret.txt",
        "out/secret.txt",
        "/out",
        "data/../../secret.txt",
    ],
)
def test_dot_dot_and_links_out_are_refused_even_when_absolute(root: Path, path: str) -> None:
    with pytest.raises(OutsideFilesRoot, match="outside the files root") as caught:
        resolve_in_root(root, path)
    assert str(root) not in str(caught.value)


def test_file_nodes_read_atomitons_absolute_paths_under_the_root(root: Path) -> None:
    read = FileSystemNode().run(FileSystemParameters(path="/data/sample.csv"), context(root=root))
    assert (read["content"], read["path"]) == (CSV, "data/sample.csv")
    sheet = SpreadsheetNode().run(
        SpreadsheetParameters.model_validate({"filePath": "/data/sample.csv"}), context(root=root)
    )
    assert sheet["rowCount"] == 2
    with pytest.raises(NodeError, match=r"spreadsheet data/missing\.csv does not exist"):
        SpreadsheetNode().run(SpreadsheetParameters(path="/data/missing.csv"), context(root=root))


# --- edit-fields templates -------------------------------------------------------------------


def edit(values: Any, data: Any = None, **parameters: Any) -> Any:
    """Run edit-fields over `data`; its `result`."""
    params = EditFieldsParameters.model_validate({"values": values, **parameters})
    return EditFieldsNode().run(params, context(data))["result"]


def test_templates_read_the_input_fields_as_javascript() -> None:
    data = {"name": "Ada", "n": 5, "user": {"email": "a@x"}, "tags": [1, None], "o": {"a": 1}}
    result = edit(
        {
            "greeting": "Hello {{name}}!",
            "next": "{{ n + 1 }}",
            "email": "{{user.email}}",
            "tags": "{{tags}}",
            "object": "{{o}}",
            "upper": "{{ name.toUpperCase() }}",
        },
        data,
        keepOnlySet=True,
    )
    assert result == {
        "greeting": "Hello Ada!",
        "next": "6",  # always text
        "email": "a@x",
        "tags": "1,",
        "object": "[object Object]",
        "upper": "ADA",
    }


def test_unknown_names_are_pre_seeded_and_missing_properties_say_undefined() -> None:
    result = edit(
        {"a": "[{{missing}}]", "b": "{{ missing.x }}", "c": "{{ user.none }}", "d": "{{it.x}}"},
        {"user": {}},
        keepOnlySet=True,
    )
    assert result == {"a": "[]", "b": "undefined", "c": "undefined", "d": "undefined"}


def test_template_values_are_html_escaped_and_literal_text_is_not() -> None:
    result = edit({"t": "<i>{{ tag }}</i>"}, {"tag": "<b>'&\""}, keepOnlySet=True)
    assert result == {"t": "<i>&lt;b&gt;&#39;&amp;&quot;</i>"}


def test_a_newline_right_after_a_tag_is_dropped() -> None:
    assert edit({"t": "{{a}}\nb\n"}, {"a": 1}, keepOnlySet=True) == {"t": "1b\n"}


def test_scope_is_the_input_not_other_values() -> None:
    result = edit({"a": "x", "b": "{{a}}"}, {"a": "input"})
    assert result == {"a": "x", "b": "input"}


def test_now_and_conductor_templates() -> None:
    result = edit(
        {"t": "{{$now}}", "n": "{{$input.n}}", "s": "n={{$input.n}}", "j": "{{$input.l}}!"},
        {"n": 5, "l": [1]},
        keepOnlySet=True,
    )
    assert result["t"].endswith("Z") and len(result["t"]) == 24
    assert (result["n"], result["s"], result["j"]) == (5, "n=5", "[1]!")


def test_javascript_tags_see_conductors_names_too() -> None:
    result = edit(
        {"a": "{{ $input.n + 1 }}", "y": "{{ $now.slice(0, 2) }}", "v": "{{ $vars.x }}"},
        {"n": 5},
        keepOnlySet=True,
    )
    assert result == {"a": "6", "y": "20", "v": None}  # a plain `$` path is Conductor's


def test_non_string_values_are_stored_unchanged() -> None:
    assert edit({"n": 1, "l": [{"x": "{{name}}"}]}, {}, keepOnlySet=True) == {
        "n": 1,
        "l": [{"x": "{{name}}"}],
    }


def test_conductor_templates_are_rendered_inside_nested_values() -> None:
    assert edit({"l": ["{{$input.n}}", {"k": "n={{$input.n}}"}]}, {"n": 5}, keepOnlySet=True) == {
        "l": [5, {"k": "n=5"}]
    }


def test_a_broken_template_names_the_field() -> None:
    with pytest.raises(ScriptError, match=r"values\.bad: template \{\{ a \+ \}\}"):
        edit({"bad": "{{ a + }}"}, {})


def test_existing_keys_keep_their_place_and_empty_values_copy_the_input() -> None:
    assert list(edit({"z": 1, "a": 2}, {"a": 0, "b": 1})) == ["a", "b", "z"]
    assert edit({}, {"a": 1}) == {"a": 1}
    assert edit({}, {"a": 1}, keepOnlySet=True) == {}
    assert edit({"a": 1}, None) == {"a": 1}


def test_evaluate_expression_binds_variables() -> None:
    assert evaluate_expression("a + b.c", {"a": 1, "b": {"c": 2}}, 1.0) == 3
    assert evaluate_expression("[typeof data, x]", {"x": None}, 1.0) == ["object", None]
    with pytest.raises(ScriptError, match="ReferenceError"):
        evaluate_expression("nope", {}, 1.0)


# --- transform -------------------------------------------------------------------------------


def transform(main: Any = None, **parameters: Any) -> dict[str, Any]:
    """Run transform on main input `main`; its whole output."""
    params = TransformParameters.model_validate(parameters)
    return dict(TransformNode().run(params, context(main)))


def test_data_parameter_is_used_and_wins_over_the_main_input() -> None:
    out = transform({"ignored": True}, data=[3, 1, 2], operation="sort")
    assert out["result"] == [1, 2, 3]
    assert (out["inputCount"], out["outputCount"], out["operation"], out["success"]) == (
        3,
        3,
        "sort",
        True,
    )


def test_a_function_body_reads_the_data_parameter_too() -> None:
    out = transform({"ignored": True}, data=[1, 2], code="return data.length;", inputType="array")
    assert (out["result"], out["operation"], out["inputCount"]) == (2, "code", 2)


def test_no_data_is_an_empty_list() -> None:
    assert transform(None)["result"] == []


def test_a_port_data_fed_a_whole_node_output_uses_its_result() -> None:
    params = TransformParameters.model_validate({"data": {"result": [1, 2], "inputCount": 2}})
    assert params.data == [1, 2]


@pytest.mark.parametrize(
    ("text", "source"),
    [
        ("item", "item => item"),
        ("item.price", "item => item.price"),
        (" item.a.b ", "item => item.a.b"),
        ("price", "item => undefined"),
        ("x => x + 1", "x => x + 1"),
        ("function (x) { return x; }", "function (x) { return x; }"),
    ],
)
def test_property_paths_are_functions(text: str, source: str) -> None:
    assert function_source(text) == source


def test_a_property_path_maps() -> None:
    rows = [{"price": 1}, {"price": 2}]
    assert transform(data=rows, transformFunction="item.price")["result"] == [1, 2]
    assert transform(data=rows, transformFunction="price")["result"] == [None, None]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", 0),
        ('{"n": 1}', {"n": 1}),
        ("[]", []),
        ("", ""),
        (" 12 ", 12),
        ("0x10", 16),
        ("1e3", 1000),
        ("abc", "abc"),
        (5, 5),
    ],
)
def test_reduce_initial_is_read_as_atomiton_reads_it(text: Any, value: Any) -> None:
    assert reduce_initial(text) == value


def test_reduce_takes_one_object_or_two_arguments() -> None:
    one = transform(
        data=[1, 2], operation="reduce", transformFunction="({acc, item}) => acc + item"
    )
    two = transform(data=[1, 2], operation="reduce", transformFunction="(acc, item) => acc + item")
    assert one["result"] == two["result"] == 3  # Atomiton: "[object Object]undefined" for two
    text = transform(
        data=[1, 2],
        operation="reduce",
        transformFunction="({acc, item}) => acc + item",
        reduceInitial="",
    )
    assert text["result"] == "12"
    assert text["outputCount"] == 1


def test_sort_follows_atomitons_order() -> None:
    assert transform(data=["10", "9", "b", "a"], operation="sort")["result"] == [
        "9",
        "10",
        "a",
        "b",
    ]
    rows = [{"k": 2, "i": 0}, {"k": 1}, {"x": 0}, {"k": 2, "i": 1}]
    assert transform(data=rows, operation="sort", sortKey="k")["result"] == [
        {"k": 1},
        {"k": 2, "i": 0},
        {"k": 2, "i": 1},
        {"x": 0},  # undefined compares as the text "undefined"
    ]
    desc = transform(data=rows, operation="sort", sortKey="k", sortDirection="desc")["result"]
    assert desc == [{"x": 0}, {"k": 2, "i": 0}, {"k": 2, "i": 1}, {"k": 1}]  # ties keep order


def test_group_by_key_or_sort_key_and_undefined() -> None:
    rows = [{"k": "b"}, {"k": 1}, {"x": 0}, 5]
    out = transform(data=rows, operation="group", groupKey="k")
    assert out["result"] == {"1": [{"k": 1}], "b": [{"k": "b"}], "undefined": [{"x": 0}, 5]}
    assert list(out["result"]) == ["1", "b", "undefined"]  # integer-like keys first, as in JS
    assert out["outputCount"] == 3
    assert transform(data=rows[:1], operation="group", sortKey="k")["result"] == {"b": rows[:1]}
    with pytest.raises(NodeError, match="groupKey or sortKey is required for group operation"):
        transform(data=rows, operation="group")


def test_limit_skip_slice_flatten_unique_reverse() -> None:
    numbers = list(range(12))
    assert transform(data=numbers, operation="limit")["result"] == numbers[:10]
    assert transform(data=numbers, operation="limit", limitCount=2)["result"] == [0, 1]
    assert transform(data=numbers, operation="skip")["result"] == numbers
    assert transform(data=numbers, operation="skip", skipCount=10)["result"] == [10, 11]
    assert transform(data=numbers, operation="slice", sliceStart=2, sliceEnd=-8)["result"] == [
        2,
        3,
    ]
    assert transform(data=[[1, [2, [3]]]], operation="flatten", flattenDepth=2)["result"] == [
        1,
        2,
        [3],
    ]
    assert transform(data=[{"a": 1}, {"a": 1}, 1], operation="unique")["result"] == [{"a": 1}, 1]
    assert transform(data=[1, 2], operation="reverse")["result"] == [2, 1]


def test_output_count_of_objects_and_scalars() -> None:
    assert (
        transform(data=[1, 2], operation="reduce", transformFunction="({acc}) => acc")[
            "outputCount"
        ]
        == 1
    )
    grouped = transform(data=[{"k": 1}], operation="group", groupKey="k")
    assert grouped["outputCount"] == 1


# --- http-request, file-system, spreadsheet logic --------------------------------------------


def test_spreadsheet_reads_raw_data_text() -> None:
    out = SpreadsheetNode().run(SpreadsheetParameters(data=CSV), context())
    assert out["records"] == [
        {"name": "Ada", "active": "true", "amount": "10.5"},
        {"name": "Bob", "active": "false", "amount": "99"},
    ]
    assert (out["headers"], out["rowCount"], out["format"]) == (
        ["name", "active", "amount"],
        2,
        "csv",
    )
    assert (out["sheetName"], out["sheetNames"], out["delimiter"]) == ("Sheet1", ["Sheet1"], ",")
    assert out["result"] == out["records"]


def test_spreadsheet_raw_data_with_a_delimiter_and_no_headers() -> None:
    out = SpreadsheetNode().run(
        SpreadsheetParameters(data="a;b\n\n1;2\n", delimiter=";", hasHeaders=False), context()
    )
    assert out["records"] == [["a", "b"], ["1", "2"]]
    assert (out["headers"], out["delimiter"]) == (["0", "1"], ";")
    kept = SpreadsheetNode().run(
        SpreadsheetParameters(data="a;b\n\n1;2\n", delimiter=";", skipEmptyLines=False),
        context(),
    )
    assert kept["records"] == [{"a": "", "b": ""}, {"a": "1", "b": "2"}]


def test_spreadsheet_header_row_only_gives_headers_and_no_records() -> None:
    out = SpreadsheetNode().run(SpreadsheetParameters(data="a,b\n"), context())
    assert (out["records"], out["headers"], out["rowCount"]) == ([], ["a", "b"], 0)


def test_spreadsheet_needs_a_path_or_data() -> None:
    with pytest.raises(InvalidParameters, match=r"`path` .* or `data`"):
        SpreadsheetNode().run(SpreadsheetParameters(), context())
    with pytest.raises(InvalidParameters, match="xlsx needs a file"):
        SpreadsheetNode().run(SpreadsheetParameters(data="a", format="xlsx"), context())


@pytest.mark.parametrize("kind", ["xls", "xlsb", "fods"])
def test_formats_conductor_cannot_read_are_refused_naming_them(root: Path, kind: str) -> None:
    with pytest.raises(NodeError, match=f"{kind} is not supported"):
        SpreadsheetNode().run(
            SpreadsheetParameters.model_validate({"path": "/data/sample.csv", "format": kind}),
            context(root=root),
        )


def test_spreadsheet_path_wins_over_data(root: Path) -> None:
    out = SpreadsheetNode().run(
        SpreadsheetParameters(path="data/sample.csv", data="x\n1\n"), context(root=root)
    )
    assert out["headers"] == ["name", "active", "amount"]


def test_spreadsheet_data_port_fed_a_file_read_uses_its_text() -> None:
    params = SpreadsheetParameters.model_validate({"data": {"result": CSV, "content": CSV}})
    assert params.data == CSV
