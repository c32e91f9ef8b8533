"""Built-in node types run on a NodeContext; the registry fails loudly."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import Any

import pytest
from pydantic import ValidationError

from nodes.base import Node, NodeContext, NodeParameters
from nodes.containers import ContainerRun
from nodes.delay import DelayNode, DelayParameters
from nodes.edit_fields import EditFieldsNode, EditFieldsParameters
from nodes.errors import (
    DuplicateNodeType,
    NodeError,
    NodeTimeout,
    ScriptError,
    UnknownNodeType,
)
from nodes.file_system import FileSystemNode
from nodes.group import GroupNode, GroupParameters
from nodes.registry import (
    NodeRegistry,
    NodeType,
    builtin_node_types,
    default_registry,
)
from nodes.transform import TransformNode, TransformParameters


def context(
    data: Any = None,
    *,
    inputs: Mapping[str, Any] | None = None,
    deadline_s: float = 10.0,
) -> NodeContext:
    """A context whose main input is `data` (also on the default port unless `inputs`)."""
    return NodeContext(
        execution_id="exec-1",
        node_id="node-1",
        inputs={"default": data} if inputs is None else inputs,
        data=data,
        deadline=time.monotonic() + deadline_s,
    )


def transform(data: Any, deadline_s: float = 10.0, **parameters: Any) -> Any:
    """Run `transform` and return its result."""
    output = TransformNode().run(
        TransformParameters.model_validate(parameters), context(data, deadline_s=deadline_s)
    )
    return output["result"]


# --- edit-fields -----------------------------------------------------------------------------


def test_edit_fields_sets_fields_over_the_input() -> None:
    params = EditFieldsParameters(values={"added": 1, "kept": "new"})
    output = EditFieldsNode().run(params, context({"kept": "old", "other": True}))
    assert output["result"] == {"kept": "new", "other": True, "added": 1}
    assert output["data"] == output["result"]


def test_edit_fields_keep_only_set_drops_the_input_fields() -> None:
    params = EditFieldsParameters(values={"added": 1}, keepOnlySet=True)
    output = EditFieldsNode().run(params, context({"other": True}))
    assert output["result"] == {"added": 1}


def test_edit_fields_keep_only_set_defaults_to_false() -> None:
    assert EditFieldsParameters().keepOnlySet is False


def test_edit_fields_values_as_a_json_string() -> None:
    params = EditFieldsParameters.model_validate({"values": '{"a": 1, "b": [true, null]}'})
    assert params.values == {"a": 1, "b": [True, None]}
    output = EditFieldsNode().run(params, context({"c": 3}))
    assert output["result"] == {"c": 3, "a": 1, "b": [True, None]}


@pytest.mark.parametrize("values", ["{not json", '"a string"', "[1, 2]"])
def test_edit_fields_values_string_must_be_a_json_object(values: str) -> None:
    with pytest.raises(ValidationError) as caught:
        EditFieldsParameters.model_validate({"values": values})
    assert caught.value.errors()[0]["loc"] == ("values",)


def test_edit_fields_on_a_non_mapping_input_starts_empty() -> None:
    output = EditFieldsNode().run(EditFieldsParameters(values={"a": 1}), context([1, 2]))
    assert output["result"] == {"a": 1}


def test_edit_fields_does_not_change_its_input() -> None:
    data = {"x": 1}
    EditFieldsNode().run(EditFieldsParameters(values={"x": 2}), context(data))
    assert data == {"x": 1}


# --- transform: the 11 operations ------------------------------------------------------------


def test_map() -> None:
    assert transform([1, 2, 3], operation="map", transformFunction="item => item * 2") == [2, 4, 6]


def test_map_passes_the_index() -> None:
    result = transform(["a", "b"], transformFunction="(item, index) => item + index")
    assert result == ["a0", "b1"]


def test_map_over_objects() -> None:
    result = transform(
        [{"n": 1}, {"n": 2}], transformFunction="item => ({...item, twice: item.n * 2})"
    )
    assert result == [{"n": 1, "twice": 2}, {"n": 2, "twice": 4}]


def test_map_of_a_single_non_list_value_returns_a_single_value() -> None:
    assert transform(5, transformFunction="item => item * 2") == 10
    assert transform({"m": "hi"}, transformFunction="item => item.m.toUpperCase()") == "HI"


def test_map_of_a_single_value_to_a_list_returns_that_list() -> None:
    assert transform(5, transformFunction="item => [item, item]") == [5, 5]


def test_filter() -> None:
    result = transform([1, 2, 3, 4], operation="filter", transformFunction="item => item % 2 === 0")
    assert result == [2, 4]


@pytest.mark.parametrize("function", ["({acc, item}) => acc + item", "(acc, item) => acc + item"])
def test_reduce_in_both_function_styles(function: str) -> None:
    assert transform([1, 2, 3, 4], operation="reduce", transformFunction=function) == 10


def test_reduce_with_an_initial_value_and_reduce_function() -> None:
    result = transform(
        [1, 2, 3, 4],
        operation="reduce",
        reduceFunction="(acc, item) => acc * item",
        reduceInitial=10,
    )
    assert result == 240


def test_reduce_into_an_object() -> None:
    result = transform(
        ["a", "b", "a"],
        operation="reduce",
        transformFunction="(acc, item) => ({...acc, [item]: (acc[item] || 0) + 1})",
        reduceInitial={},
    )
    assert result == {"a": 2, "b": 1}


def test_sort_by_key_ascending_and_descending() -> None:
    rows = [{"n": 3}, {"n": 1}, {"n": 10}, {"n": 2}]
    assert transform(rows, operation="sort", sortKey="n") == [
        {"n": 1},
        {"n": 2},
        {"n": 3},
        {"n": 10},
    ]
    assert transform(rows, operation="sort", sortKey="n", sortDirection="desc") == [
        {"n": 10},
        {"n": 3},
        {"n": 2},
        {"n": 1},
    ]


def test_sort_strings_and_by_function() -> None:
    assert transform(["pear", "apple", "fig"], operation="sort") == ["apple", "fig", "pear"]
    assert transform([3, 1, 2], operation="sort", transformFunction="x => -x") == [3, 2, 1]


def test_sort_does_not_reorder_its_input() -> None:
    data = [2, 1]
    transform(data, operation="sort")
    assert data == [2, 1]


def test_group_by_key() -> None:
    rows = [{"k": "x", "v": 1}, {"k": "y", "v": 2}, {"k": "x", "v": 3}]
    assert transform(rows, operation="group", groupBy="k") == {
        "x": [{"k": "x", "v": 1}, {"k": "x", "v": 3}],
        "y": [{"k": "y", "v": 2}],
    }


def test_group_by_function() -> None:
    result = transform(
        [1, 2, 3, 4], operation="group", transformFunction="i => i % 2 ? 'odd' : 'even'"
    )
    assert result == {"odd": [1, 3], "even": [2, 4]}


def test_flatten_one_level_by_default_and_deeper_on_request() -> None:
    assert transform([[1, [2]], [3]], operation="flatten") == [1, [2], 3]
    assert transform([[1, [2]], [3]], operation="flatten", flattenDepth=2) == [1, 2, 3]


def test_unique_keeps_the_first_of_equal_values() -> None:
    assert transform([1, 2, 1, 3, 2], operation="unique") == [1, 2, 3]
    rows = [{"id": 1, "v": "a"}, {"id": 1, "v": "b"}, {"id": 2, "v": "c"}]
    assert transform(rows, operation="unique", transformFunction="r => r.id") == [
        {"id": 1, "v": "a"},
        {"id": 2, "v": "c"},
    ]


def test_reverse() -> None:
    assert transform([1, 2, 3], operation="reverse") == [3, 2, 1]


def test_limit() -> None:
    assert transform(list(range(20)), operation="limit", limit=3) == [0, 1, 2]
    assert transform(list(range(20)), operation="limit") == list(range(10))


def test_skip() -> None:
    assert transform([1, 2, 3, 4], operation="skip", skip=2) == [3, 4]


def test_slice() -> None:
    assert transform([1, 2, 3, 4, 5], operation="slice", start=1, end=3) == [2, 3]
    assert transform([1, 2, 3, 4, 5], operation="slice", start=-2) == [4, 5]
    assert transform([1, 2, 3, 4, 5], operation="slice") == [1, 2, 3, 4, 5]


def test_transform_output_carries_counts() -> None:
    output = TransformNode().run(
        TransformParameters(operation="filter", transformFunction="i => i > 1"), context([1, 2, 3])
    )
    assert output["inputCount"] == 3
    assert output["outputCount"] == 2
    assert output["operation"] == "filter"
    assert output["data"] == [2, 3]


def test_transform_parameters_reject_unknown_operations() -> None:
    with pytest.raises(ValidationError):
        TransformParameters.model_validate({"operation": "explode"})


# --- transform: the sandbox ------------------------------------------------------------------


def test_a_throwing_function_is_a_script_error_with_the_js_message() -> None:
    with pytest.raises(ScriptError) as caught:
        transform([1], transformFunction="item => { throw new Error('boom at ' + item) }")
    assert "boom at 1" in str(caught.value)
    assert caught.value.retryable is False


def test_a_type_error_in_js_is_a_script_error() -> None:
    with pytest.raises(ScriptError, match="TypeError"):
        transform([None], transformFunction="item => item.field.deeper")


def test_a_syntax_error_does_not_compile() -> None:
    with pytest.raises(ScriptError, match="does not compile"):
        transform([1], transformFunction="item => {")


def test_a_function_source_that_is_not_a_function() -> None:
    with pytest.raises(ScriptError, match="is not a function"):
        transform([1], transformFunction="42")


def test_an_infinite_loop_times_out_at_the_deadline() -> None:
    started = time.monotonic()
    with pytest.raises(NodeError) as caught:
        transform([1], deadline_s=0.3, transformFunction="item => { while(true){} }")
    elapsed = time.monotonic() - started
    assert caught.value.code == "TIMEOUT"
    assert 0.2 <= elapsed < 1.0


def test_a_memory_bomb_hits_the_memory_limit() -> None:
    with pytest.raises(NodeError) as caught:
        transform([1], transformFunction="item => { let s = 'x'; while (true) { s = s + s } }")
    assert caught.value.code == "MEMORY_LIMIT_EXCEEDED"
    assert caught.value.retryable is False


@pytest.mark.parametrize("name", ["require", "process", "std", "os", "fetch", "XMLHttpRequest"])
def test_no_host_access_from_javascript(name: str) -> None:
    assert transform(1, transformFunction=f"item => typeof {name}") == "undefined"


def test_each_run_gets_a_fresh_context() -> None:
    transform(1, transformFunction="item => { globalThis.leak = 'secret'; return item }")
    assert transform(1, transformFunction="item => typeof globalThis.leak") == "undefined"


# --- delay ----------------------------------------------------------------------------------


def test_delay_waits_and_passes_the_data_through() -> None:
    started = time.monotonic()
    output = DelayNode().run(DelayParameters(ms=150), context({"x": 1}))
    assert time.monotonic() - started >= 0.15
    assert output["result"] == {"x": 1}
    assert output["waited_ms"] == 150


def test_delay_beyond_the_deadline_times_out_at_the_deadline() -> None:
    started = time.monotonic()
    with pytest.raises(NodeTimeout) as caught:
        DelayNode().run(DelayParameters(ms=60_000), context({"x": 1}, deadline_s=0.2))
    assert time.monotonic() - started < 1.0
    assert caught.value.code == "TIMEOUT"


def test_delay_rejects_negative_ms() -> None:
    with pytest.raises(ValidationError):
        DelayParameters(ms=-1)


# --- group ----------------------------------------------------------------------------------


def collect(children: dict[str, Any]) -> dict[str, Any]:
    """The group's output for these sink children, without its `metadata`."""
    ran = dataclasses.replace(context(inputs=children), container=ContainerRun(0, 2))
    output = dict(GroupNode().run(GroupParameters(), ran))
    assert output.pop("metadata")["nodeType"] == "group"
    return output


def test_group_with_one_child_outputs_that_childs_output() -> None:
    child = {"result": {"v": 1}, "data": {"v": 1}, "extra": 2}
    assert collect({"only": child}) == child


def test_group_with_one_child_wraps_a_plain_value() -> None:
    assert collect({"only": 7}) == {"result": 7}


def test_group_with_several_children_maps_child_ids() -> None:
    children = {"left": {"result": 1, "n": "l"}, "right": {"result": 2}}
    output = collect(children)
    assert output["result"] == {"left": 1, "right": 2}
    assert output["left"] == {"result": 1, "n": "l"}
    assert output["right"] == {"result": 2}


def test_group_child_called_result_does_not_hide_the_result_map() -> None:
    children = {"result": {"result": 1}, "other": {"result": 2}}
    assert collect(children)["result"] == {"result": 1, "other": 2}


# --- registry -------------------------------------------------------------------------------


class ImpostorDelay(Node[NodeParameters]):
    """A second node type that claims the name `delay`."""

    type_name = "delay"

    def run(self, params: NodeParameters, context: NodeContext) -> Mapping[str, Any]:
        return {"result": None}


def test_duplicate_registration_names_both_classes() -> None:
    with pytest.raises(DuplicateNodeType) as caught:
        NodeRegistry([*builtin_node_types(), ImpostorDelay])
    message = str(caught.value)
    assert "'delay'" in message
    assert "nodes.delay.DelayNode" in message
    assert f"{__name__}.ImpostorDelay" in message


def test_registering_one_class_twice_also_raises() -> None:
    registry = NodeRegistry([DelayNode])
    with pytest.raises(DuplicateNodeType):
        registry.register(DelayNode)


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(UnknownNodeType) as caught:
        default_registry().get("teleport")
    message = str(caught.value)
    assert "'teleport'" in message
    for name in ("delay", "edit-fields", "group", "transform"):
        assert name in message


def test_default_registry_holds_the_builtins() -> None:
    registry = default_registry()
    for node_type in builtin_node_types():
        assert registry.get(node_type.type_name) is node_type
        assert node_type.type_name in registry
    assert "teleport" not in registry
    assert registry.names() == sorted(registry.names())
    assert [t.type_name for t in registry] == registry.names()


@pytest.mark.parametrize("node_type", builtin_node_types(), ids=lambda t: t.type_name)
def test_json_schema_includes_the_base_parameters(node_type: NodeType) -> None:
    schema = node_type.json_schema()
    properties = schema["properties"]
    assert {"enabled", "timeout", "retries"} <= set(properties)
    assert properties["enabled"]["default"] is True
    # a wait for a signal (a person's approval) waits a day unless told otherwise, a wait for
    # a child execution as long as a wait may (the child's own timeout bounds it)
    defaults = {"wait-for-signal": 86_400_000, "blueprint": 7 * 86_400_000}
    assert properties["timeout"]["default"] == defaults.get(node_type.type_name, 30000)
    assert properties["retries"]["default"] == 1
    assert {"label", "description"} <= set(properties)
    # Unknown keys are dropped with a warning, as Atomiton drops them: not a schema error.
    assert schema.get("additionalProperties") is not False


def test_json_schema_lists_each_alias_beside_its_canonical_name() -> None:
    properties = FileSystemNode.json_schema()["properties"]
    assert properties["filePath"]["description"] == "Alias of path"
    assert properties["filePath"]["type"] == properties["path"]["type"]


@pytest.mark.parametrize("node_type", builtin_node_types(), ids=lambda t: t.type_name)
def test_builtin_types_are_described(node_type: NodeType) -> None:
    assert node_type.description
    assert node_type.type_name
