"""Output limits (issue 15, item 7): size and depth measured while walking, stopped early;
templates stop rendering once past the limit."""

from __future__ import annotations

import time

import pytest

from conductor.model.settings import Settings
from nodes.base import NodeContext, NodeEnvironment
from nodes.edit_fields import EditFieldsNode, EditFieldsParameters
from nodes.output_budget import MAX_OUTPUT_DEPTH, MIB, OutputBudget, OutputTooDeep, OutputTooLarge
from nodes.templates import render_value

MEGABYTE = "x" * 1_000_000


def test_a_shared_value_counts_each_time_and_the_walk_stops_early() -> None:
    shared = [MEGABYTE] * 10_000_000  # 10 TB as JSON; never serialized
    started = time.monotonic()
    with pytest.raises(OutputTooLarge, match=r"larger than 64 MiB.*CONDUCTOR_MAX_OUTPUT_MB"):
        OutputBudget().charge({"result": shared, "data": shared})
    assert time.monotonic() - started < 5  # stopped after about 64 items, not 10 million


def test_an_output_under_the_limit_passes() -> None:
    budget = OutputBudget(2_100_000)
    budget.charge({"result": MEGABYTE, "data": MEGABYTE})
    assert 2_000_000 < budget.used < 2_100_000


def test_depth_is_limited() -> None:
    value: list[object] = []
    deep = value
    for _ in range(MAX_OUTPUT_DEPTH - 1):
        deep.append([])
        deep = deep[0]  # type: ignore[assignment]
    OutputBudget().charge(value)  # MAX_OUTPUT_DEPTH levels: the most there may be
    with pytest.raises(OutputTooDeep, match=f"deeper than {MAX_OUTPUT_DEPTH} levels"):
        OutputBudget().charge({"result": value})


def test_text_templates_stop_rendering_at_the_limit() -> None:
    scope = {"vars": {"big": MEGABYTE}}
    template = "<{{$vars.big}}>" * 200
    with pytest.raises(OutputTooLarge, match="rendered parameters is larger than 10 MiB"):
        render_value({"body": template}, scope, OutputBudget(10 * MIB, what="rendered parameters"))
    assert render_value("{{$vars.big}}", scope, OutputBudget(10)) is MEGABYTE  # no copy made


def test_edit_fields_stops_once_its_fields_pass_the_limit() -> None:
    values = {f"f{i}": "{{$vars.big}}" for i in range(200)}
    params = EditFieldsParameters(values=values, keepOnlySet=True)
    context = NodeContext(
        "e", "n", {}, variables={"big": MEGABYTE},
        environment=NodeEnvironment(max_output_bytes=5 * MIB),
    )  # fmt: skip
    with pytest.raises(OutputTooLarge, match="edit-fields' output is larger than 5 MiB"):
        EditFieldsNode().run(params, context)


def test_settings_read_conductor_max_output_mb() -> None:
    env = {"CONDUCTOR_DATA_DIR": "/tmp/x"}
    assert Settings.from_env(env).max_output_mb == 64
    assert Settings.from_env({**env, "CONDUCTOR_MAX_OUTPUT_MB": "8"}).max_output_mb == 8
