"""Priorities and concurrency keys as data: ranges, names, the broker's inverted order, the
Blueprint's limit, and a plan carrying them to every node."""

from __future__ import annotations

import pytest

from conductor.compiler import compile_plan
from conductor.model.admission import (
    Admission,
    InvalidAdmission,
    admitted_plan,
    broker_priority,
    check_concurrency_key,
    check_priority,
    max_running_problem,
    max_running_setting,
)
from conductor.model.loader import blueprint_from_data
from conductor.validation import validate
from nodes.registry import default_registry

LOOP = {
    "id": "bp",
    "name": "Loop",
    "nodes": [
        {
            "id": "each",
            "type": "loop",
            "parameters": {"items": [1, 2]},
            "nodes": [{"id": "wait", "type": "delay", "parameters": {"ms": 1}}],
        }
    ],
}


def test_priorities_run_from_0_to_9() -> None:
    assert [check_priority(p) for p in (0, 5, 9)] == [0, 5, 9]
    for bad in (-1, 10, "9", 9.0, True, None):
        with pytest.raises(InvalidAdmission, match=r"^priority: ") as caught:
            check_priority(bad)
        assert caught.value.field == "priority"


def test_kombu_serves_lower_numbers_first_so_urgent_maps_low() -> None:
    assert broker_priority(9) == 0
    assert broker_priority(0) == 9
    assert broker_priority(None) == broker_priority(5) == 4


def test_concurrency_keys_are_printable_without_spaces_or_braces() -> None:
    assert check_concurrency_key("customer-42@eu/1") == "customer-42@eu/1"
    for bad in ("", "a b", "a{b}", "x" * 201, 7):
        with pytest.raises(InvalidAdmission, match=r"^concurrency_key: "):
            check_concurrency_key(bad)
    with pytest.raises(InvalidAdmission):
        Admission(priority=3, concurrency_key="tab\tkey")
    with pytest.raises(InvalidAdmission):
        Admission(priority=11)


def test_the_blueprint_setting_is_checked_and_read() -> None:
    assert max_running_setting({"concurrency": {"maxRunning": 3}}) == 3
    assert max_running_setting({}) is None
    assert max_running_setting({"concurrency": {"maxRunning": True}}) is None
    assert max_running_problem({}) is None
    assert max_running_problem({"concurrency": {}}) is None
    assert max_running_problem({"concurrency": 2}) is not None
    for bad in (0, -1, "2", 1.5, False):
        assert max_running_problem({"concurrency": {"maxRunning": bad}}) is not None
    model = blueprint_from_data({**LOOP, "settings": {"concurrency": {"maxRunning": 0}}})
    problems = validate(model, default_registry())
    assert [p.path for p in problems] == ["settings.concurrency.maxRunning"]


def test_a_plan_carries_its_priority_to_every_node_and_loop_body() -> None:
    plan = compile_plan(blueprint_from_data(LOOP), "e1", {})
    assert admitted_plan(plan, Admission(), 1) is plan, "the default changes nothing"
    urgent = admitted_plan(plan, Admission(priority=9, concurrency_key="k"), 2)
    assert (urgent.priority, urgent.concurrency_key, urgent.max_running) == (9, "k", 2)
    loop = urgent.nodes["each"]
    assert loop.priority == 9
    assert [child.priority for child in loop.body] == [9]
    keyed = admitted_plan(plan, Admission(concurrency_key="k"), 1)
    assert keyed.priority is None and keyed.nodes["each"].priority is None
