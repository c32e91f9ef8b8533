"""nodes/templates.py: `{{$input}}`-style templates over plain data, with no way out of it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from nodes.errors import InvalidParameters
from nodes.templates import has_template, render_string, render_value

SCOPE: dict[str, Any] = {
    "input": {
        "message": "hello",
        "count": 3,
        "ok": True,
        "items": [{"name": "first"}, "second"],
        "nested": {"deep": {"value": 42}},
        "dash-key": "dashed",
    },
    "vars": {"inputPath": "/data/sample.csv", "limit": 10},
}


def test_whole_string_template_keeps_the_value_type() -> None:
    assert render_string("{{$input}}", SCOPE) == SCOPE["input"]
    assert render_string("{{$input.count}}", SCOPE) == 3
    assert render_string("{{$input.ok}}", SCOPE) is True
    assert render_string("{{$input.items}}", SCOPE) == [{"name": "first"}, "second"]


def test_spaces_inside_the_braces_are_allowed() -> None:
    assert render_string("{{ $input.count }}", SCOPE) == 3


def test_embedded_template_inserts_text() -> None:
    assert render_string("Say: {{$input.message}}!", SCOPE) == "Say: hello!"
    assert render_string("n={{$input.count}}", SCOPE) == "n=3"


def test_embedded_structure_is_inserted_as_compact_json() -> None:
    assert render_string("items={{$input.items}}", SCOPE) == 'items=[{"name":"first"},"second"]'
    assert render_string("ok={{$input.ok}}", SCOPE) == "ok=true"


def test_embedded_missing_value_is_empty_text() -> None:
    assert render_string("[{{$input.nothing}}]", SCOPE) == "[]"


def test_several_templates_in_one_string() -> None:
    text = "{{$vars.inputPath}} has {{$input.count}} rows"
    assert render_string(text, SCOPE) == "/data/sample.csv has 3 rows"


def test_string_that_starts_and_ends_with_different_templates() -> None:
    scope = {"input": {"first": "Ada", "last": "Lovelace"}}
    assert render_string("{{$input.first}} {{$input.last}}", scope) == "Ada Lovelace"


def test_key_access() -> None:
    assert render_string("{{$input.message}}", SCOPE) == "hello"
    assert render_string("{{$input.nested.deep.value}}", SCOPE) == 42
    assert render_string("{{$input.dash-key}}", SCOPE) == "dashed"


def test_list_index() -> None:
    assert render_string("{{$input.items[0]}}", SCOPE) == {"name": "first"}
    assert render_string("{{$input.items[0].name}}", SCOPE) == "first"
    assert render_string("{{$input.items[1]}}", SCOPE) == "second"
    assert render_string("{{$input.items.1}}", SCOPE) == "second"


def test_missing_keys_and_indexes_are_none() -> None:
    assert render_string("{{$input.nope}}", SCOPE) is None
    assert render_string("{{$input.items[7]}}", SCOPE) is None
    assert render_string("{{$input.message.length}}", SCOPE) is None
    assert render_string("{{$input.count[0]}}", SCOPE) is None


def test_vars() -> None:
    assert render_string("{{$vars.inputPath}}", SCOPE) == "/data/sample.csv"
    assert render_string("{{$vars.limit}}", SCOPE) == 10


def test_now_is_the_current_iso_utc_time() -> None:
    before = datetime.now(UTC)
    value = render_string("{{$now}}", SCOPE)
    after = datetime.now(UTC)
    assert isinstance(value, str)
    assert value.endswith("Z")
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    assert parsed.utcoffset() == timedelta(0)
    assert before - timedelta(milliseconds=1) <= parsed <= after


def test_now_works_without_anything_in_scope() -> None:
    assert isinstance(render_string("{{$now}}", {}), str)


def test_unknown_root_raises_naming_it_and_the_known_ones() -> None:
    with pytest.raises(InvalidParameters) as caught:
        render_string("{{$secrets.key}}", SCOPE)
    message = str(caught.value)
    assert "$secrets" in message
    for known in ("$input", "$vars", "$now"):
        assert known in message
    assert caught.value.code == "INVALID_PARAMETERS"
    assert caught.value.retryable is False


@pytest.mark.parametrize(
    "expression",
    [
        "{{$input.__class__}}",
        "{{$input.__dict__}}",
        "{{$input.message.__class__}}",
        "{{$input.items.__len__}}",
        "{{$input.__class__.__mro__}}",
        "{{$vars.__globals__}}",
        "{{$input.keys}}",
        "{{$input.message.upper}}",
    ],
)
def test_attribute_like_access_to_python_internals_yields_nothing(expression: str) -> None:
    assert render_string(expression, SCOPE) is None
    assert render_string(f"x{expression}y", SCOPE) == "xy"


@pytest.mark.parametrize(
    "expression",
    [
        "{{input}}",
        "{{$input.upper()}}",
        "{{$input + 1}}",
        "{{__import__('os').system('id')}}",
        "{{$input['message']}}",
        "{{$input..message}}",
        "{{$input[-1]}}",
        "{{}}",
        "{{ }}",
        "{{$}}",
    ],
)
def test_malformed_expressions_raise(expression: str) -> None:
    with pytest.raises(InvalidParameters, match="not of the form"):
        render_string(expression, SCOPE)


def test_malformed_embedded_expression_raises_too() -> None:
    with pytest.raises(InvalidParameters):
        render_string("value: {{$input.upper()}}", SCOPE)


def test_text_without_templates_is_returned_as_is() -> None:
    assert render_string("plain text with {braces}", SCOPE) == "plain text with {braces}"


def test_render_value_recurses_into_mappings_and_lists() -> None:
    value = {
        "path": "{{$vars.inputPath}}",
        "list": ["{{$input.count}}", 7, None, {"m": "msg: {{$input.message}}"}],
        "number": 1.5,
    }
    assert render_value(value, SCOPE) == {
        "path": "/data/sample.csv",
        "list": [3, 7, None, {"m": "msg: hello"}],
        "number": 1.5,
    }


def test_rendered_values_are_not_rendered_again() -> None:
    scope = {"input": {"text": "{{$vars.secret}}"}, "vars": {"secret": "leak"}}
    assert render_string("{{$input.text}}", scope) == "{{$vars.secret}}"
    assert render_string("got {{$input.text}}", scope) == "got {{$vars.secret}}"


def test_has_template() -> None:
    assert has_template("{{$input}}")
    assert has_template({"a": ["x", {"b": "pre {{$now}}"}]})
    assert not has_template({"a": ["x", {"b": "plain"}], "n": 1})
    assert not has_template(5)
