"""Conditions through the real worker, CLI and API: both branches of an `if`, a `switch` with
its fallback, `runIf` false and true, a join after a branch, skip propagation, conditions inside
groups and loops, and validation errors naming the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from conductor.model.loader import load_blueprint_text
from tests.e2e.conftest import RunBlueprint
from tests.e2e.test_api import assert_problem, follow, http, submit
from tests.e2e.test_cli import conductor

__all__ = ["http"]  # the fixture

BRANCHES = """
id: branches
name: Branches
variables:
  limit: {type: number, defaultValue: 100}
nodes:
  - {id: start, type: edit-fields, parameters: {values: {amount: "{{$input.amount}}"}, keepOnlySet: true}}
  - {id: check, type: if, parameters: {condition: "Number($input.amount) > $vars.limit"}}
  - {id: big, type: transform, parameters: {transformFunction: "item => 'big ' + item.amount"}}
  - {id: small, type: transform, parameters: {transformFunction: "item => 'small ' + item.amount"}}
  - {id: after-small, type: transform, parameters: {transformFunction: "item => item + '!'"}}
  - {id: join, type: transform, parameters: {transformFunction: "item => 'joined ' + item"}}
edges:
  - {source: start, target: check}
  - {source: check, target: big, sourceHandle: true}
  - {source: check, target: small, sourceHandle: false}
  - {source: small, target: after-small}
  - {source: big, target: join}
  - {source: after-small, target: join}
"""


def statuses(result: dict[str, Any]) -> dict[str, str]:
    return {step["nodeId"]: step["status"] for step in result["trace"]}


@pytest.mark.parametrize(
    ("amount", "joined", "skipped"),
    [(150, "joined big 150", {"small", "after-small"}), (50, "joined small 50!", {"big"})],
)
def test_both_branches_of_an_if_and_the_join_after_them(
    run_blueprint: RunBlueprint, amount: int, joined: str, skipped: set[str]
) -> None:
    result = run_blueprint(BRANCHES, {"amount": amount})
    assert result["status"] == "succeeded", result["error"]
    assert set(result["data"]) == {"join"}
    assert result["data"]["join"]["result"] == joined
    found = statuses(result)
    assert {node for node, status in found.items() if status == "skipped"} == skipped
    assert set(result["executedNodes"]) == set(found) - skipped


SWITCH = """
id: switch
name: Switch
nodes:
  - id: route
    type: switch
    parameters:
      value: "$input.kind"
      cases:
        - {output: fruit, equals: apple}
        - {output: fruit, equals: pear}
        - {output: long, when: "$input.kind.length > 6"}
  - {id: fruit, type: transform, parameters: {transformFunction: "item => 'fruit ' + item.kind"}}
  - {id: long, type: transform, parameters: {transformFunction: "item => 'long ' + item.kind"}}
  - {id: other, type: transform, parameters: {transformFunction: "item => 'other ' + item.kind"}}
edges:
  - {source: route, target: fruit, sourceHandle: fruit}
  - {source: route, target: long, sourceHandle: long}
  - {source: route, target: other, sourceHandle: default}
"""


@pytest.mark.parametrize(
    ("kind", "taken"),
    [("pear", "fruit"), ("cucumber", "long"), ("fig", "other")],
)
def test_a_switch_takes_the_first_matching_case_or_its_default(
    run_blueprint: RunBlueprint, kind: str, taken: str
) -> None:
    result = run_blueprint(SWITCH, {"kind": kind})
    assert result["status"] == "succeeded", result["error"]
    assert result["data"][taken]["result"] == f"{taken} {kind}"
    others = {"fruit", "long", "other"} - {taken}
    for node in others:
        assert result["data"][node]["$skipped"].startswith("nothing arrived: branch ")
    assert {n for n, s in statuses(result).items() if s == "skipped"} == others


RUN_IF = """
id: run-if
name: Run if
nodes:
  - {id: source, type: edit-fields, parameters: {values: {n: "{{$input.n}}"}, keepOnlySet: true}}
  - id: maybe
    type: transform
    runIf: "Number($input.n) > 10"
    parameters: {transformFunction: "item => 'ran for ' + item.n"}
  - {id: after, type: transform, parameters: {transformFunction: "item => item + '.'"}}
  - id: guarded
    type: group
    runIf: "$vars.extra === true"
    nodes:
      - {id: inner, type: transform, parameters: {transformFunction: "item => 'extra ' + item.n"}}
edges:
  - {source: source, target: maybe}
  - {source: maybe, target: after}
  - {source: source, target: guarded}
"""


def test_run_if_false_skips_the_node_and_what_only_it_feeds(run_blueprint: RunBlueprint) -> None:
    result = run_blueprint(RUN_IF, {"n": 3, "extra": False})
    assert result["status"] == "succeeded", result["error"]
    found = statuses(result)
    assert {n for n, s in found.items() if s == "skipped"} == {
        "maybe",
        "after",
        "guarded/inner",
        "guarded",
    }
    assert result["data"]["after"]["$skipped"] == "nothing arrived: 'maybe' was skipped"
    assert result["data"]["guarded"]["result"] is None


def test_run_if_true_runs_the_node(run_blueprint: RunBlueprint) -> None:
    result = run_blueprint(RUN_IF, {"n": 30, "extra": True})
    assert result["status"] == "succeeded", result["error"]
    assert "skipped" not in statuses(result).values()
    assert result["data"]["after"]["result"] == "ran for 30."
    assert result["data"]["guarded"]["result"] == "extra 30"


LOOP = """
id: loop-branches
name: Loop branches
nodes:
  - id: each
    type: loop
    parameters: {loopType: forEach, iterateOver: items}
    nodes:
      - {id: sign, type: if, parameters: {condition: "$input >= 0"}}
      - {id: pos, type: transform, parameters: {transformFunction: "n => 'pos ' + n"}}
      - {id: neg, type: transform, parameters: {transformFunction: "n => 'neg ' + n"}}
      - {id: odd, type: transform, runIf: "$input % 2 !== 0", parameters: {transformFunction: "n => n"}}
    edges:
      - {source: sign, target: pos, sourceHandle: "true"}
      - {source: sign, target: neg, sourceHandle: "false"}
"""


def test_branches_inside_a_loop_body_run_per_item(run_blueprint: RunBlueprint) -> None:
    result = run_blueprint(LOOP, {"items": [2, -3]})
    assert result["status"] == "succeeded", result["error"]
    # each item's outcome is what its body's sinks that ran gave
    assert result["data"]["each"]["result"] == [
        "pos 2",
        {"neg": "neg -3", "odd": -3},
    ]
    skipped = {n for n, s in statuses(result).items() if s == "skipped"}
    assert skipped == {"each#0/neg", "each#0/odd", "each#1/pos"}


INVALID = """
id: invalid-conditions
name: Invalid conditions
nodes:
  - {id: check, type: if, runIf: "$input.ready >", parameters: {condition: "$input.("}}
  - {id: a, type: delay, parameters: {ms: 0}}
  - {id: b, type: delay, parameters: {ms: 0}}
edges:
  - {source: check, target: a, sourceHandle: "yes"}
  - {source: check, target: b}
"""
INVALID_PATHS = {
    "nodes[0].runIf",
    "nodes[0].parameters.condition",
    "edges[0].sourceHandle",
    "edges[1].sourceHandle",
}


def test_validate_names_every_condition_problem_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "invalid.yaml"
    path.write_text(INVALID)
    done = conductor("validate", str(path), env={})
    assert done.returncode == 2, done.stdout
    for field in INVALID_PATHS:
        assert f"  {field}: " in done.stderr, done.stderr
    assert "if node 'check' has no handle 'yes'; its handles: true, false" in done.stderr
    listed = conductor("nodes", "switch", "--json", env={})
    assert listed.returncode == 0, listed.stderr
    assert set(json.loads(listed.stdout)["parameters"]["properties"]) >= {"value", "cases"}


def test_the_api_refuses_invalid_conditions_and_follows_skips(http: httpx.Client) -> None:
    invalid = load_blueprint_text(INVALID).model_dump(mode="json", exclude_none=True)
    for path, body in (
        ("/v1/executions", {"blueprint": invalid}),
        ("/v1/blueprints/validate", invalid),
    ):
        problem = assert_problem(http.post(path, json=body), 422)
        assert {error["path"] for error in problem["errors"]} >= {
            ("blueprint." if path == "/v1/executions" else "") + field for field in INVALID_PATHS
        }
    valid = load_blueprint_text(BRANCHES).model_dump(mode="json", exclude_none=True)
    execution_id = submit(http, {"blueprint": valid, "inputs": {"amount": 5}})
    events = follow(http, execution_id)
    reasons = {
        e.data["node_id"]: e.data["data"]["reason"] for e in events if e.event == "node.skipped"
    }
    assert reasons == {"big": "nothing arrived: branch 'true' of 'check' not taken (took 'false')"}
    view = http.get(f"/v1/executions/{execution_id}").json()
    assert {n["node_id"]: n["status"] for n in view["nodes"]}["big"] == "skipped"
    catalogue = {entry["type"] for entry in http.get("/v1/nodes").json()}
    assert {"if", "switch"} <= catalogue
    assert "condition" in http.get("/v1/nodes/if").json()["parameters"]["properties"]
