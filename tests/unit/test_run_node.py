"""workers/run_node.py: one node per call, as a worker runs it, over the in-memory stores."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import pytest
from pydantic import Field

from conductor.compiler import compile_plan
from conductor.model.blueprint import Blueprint
from conductor.model.graph import levels
from conductor.model.plan import ExecutionPlan
from conductor.validation import validate
from nodes.base import Node, NodeContext, NodeParameters
from nodes.errors import NodeError
from nodes.registry import NodeRegistry, builtin_node_types
from storage.blobs import BlobWriteFailed, MemoryBlobStore, unpack
from storage.memory_state import MemoryStateStore
from storage.state import ExecutionStatus, NodeRecord, NodeStatus, now_ms
from tests.unit.blueprints import blueprint, chain_edges, edge, group, node
from workers.finalize import finalize
from workers.run_node import NodeRun, Outcome, run_node
from workers.stores import Stores

EXECUTION_ID = "exec-1"
RESULT_KEYS = {"id", "status", "success", "data", "error", "duration_ms", "executedNodes", "trace"}


# --- test node types -------------------------------------------------------------------------


class EmitParameters(NodeParameters):
    """Parameters of `emit`."""

    output: dict[str, Any] = Field(default_factory=lambda: {"result": None})


class EmitNode(Node[EmitParameters]):
    """Returns its `output` parameter as its whole output."""

    type_name = "emit"
    parameters_model = EmitParameters

    def run(self, params: EmitParameters, context: NodeContext) -> Mapping[str, Any]:
        return params.output


class FailParameters(NodeParameters):
    """Parameters of `fail`."""

    code: str = "TRANSPORT_ERROR"
    retryable: bool = True
    succeed_from_attempt: int = 0  # 0: never succeed


class FailNode(Node[FailParameters]):
    """Raises a NodeError (until `succeed_from_attempt`)."""

    type_name = "fail"
    parameters_model = FailParameters

    def run(self, params: FailParameters, context: NodeContext) -> Mapping[str, Any]:
        if params.succeed_from_attempt and context.attempt >= params.succeed_from_attempt:
            return {"result": f"ok on attempt {context.attempt}"}
        raise NodeError("backend unavailable", code=params.code, retryable=params.retryable)


class CrashNode(Node[NodeParameters]):
    """Has a bug: raises a plain exception."""

    type_name = "crash"

    def run(self, params: NodeParameters, context: NodeContext) -> Mapping[str, Any]:
        raise RuntimeError("oops, a bug")


class BadOutputNode(Node[NodeParameters]):
    """Returns an output without `result`."""

    type_name = "bad-output"

    def run(self, params: NodeParameters, context: NodeContext) -> Mapping[str, Any]:
        return {"value": 1}


class NotJsonNode(Node[NodeParameters]):
    """Returns an output that JSON cannot hold."""

    type_name = "not-json"

    def run(self, params: NodeParameters, context: NodeContext) -> Mapping[str, Any]:
        return {"result": {1, 2}}


class DeepNode(Node[NodeParameters]):
    """Returns a list nested 900 deep: JSON, but deeper than any reader may parse."""

    type_name = "deep"

    def run(self, params: NodeParameters, context: NodeContext) -> Mapping[str, Any]:
        value: Any = 0
        for _ in range(900):
            value = [value]
        return {"result": value}


class CountNode(Node[NodeParameters]):
    """Records every run; passes its input through."""

    type_name = "count"
    calls: ClassVar[list[str]] = []

    def run(self, params: NodeParameters, context: NodeContext) -> Mapping[str, Any]:
        CountNode.calls.append(context.node_id)
        return {"result": context.data}


@pytest.fixture
def registry() -> Iterator[NodeRegistry]:
    """Built-ins plus the test node types above."""
    CountNode.calls.clear()
    yield NodeRegistry(
        [
            *builtin_node_types(),
            EmitNode,
            FailNode,
            CrashNode,
            BadOutputNode,
            NotJsonNode,
            DeepNode,
            CountNode,
        ]
    )
    CountNode.calls.clear()


# --- a worker, level by level -----------------------------------------------------------------


class Execution:
    """One execution over in-memory stores, run the way the canvas would run it."""

    def __init__(
        self,
        registry: NodeRegistry,
        model: Blueprint,
        inputs: Mapping[str, Any] | None = None,
        blob_threshold_bytes: int | None = None,
    ) -> None:
        self.registry = registry
        self.state = MemoryStateStore()
        self.blobs = MemoryBlobStore()
        self.stores = Stores(self.state, self.blobs)
        if blob_threshold_bytes is not None:
            self.stores = Stores(self.state, self.blobs, blob_threshold_bytes=blob_threshold_bytes)
        self.plan: ExecutionPlan = compile_plan(model, EXECUTION_ID, dict(inputs or {}))
        self.state.create(self.plan)

    def run(self, key: str) -> NodeRun:
        """Deliver the task of node `key` once."""
        return run_node(EXECUTION_ID, key, self.stores, self.registry, worker="unit")

    def run_all(self) -> dict[str, NodeRun]:
        """Every node once, level by level (stopping nowhere: later nodes see the state)."""
        return {key: self.run(key) for level in levels(self.plan.dependencies()) for key in level}

    def result(self) -> dict[str, Any] | None:
        """The final result object, once the execution is over."""
        text = self.state.result(EXECUTION_ID)
        if text is None:
            return None
        value: dict[str, Any] = unpack(text, self.blobs)  # a large result is a blob too
        return value

    def final(self) -> dict[str, Any]:
        """The final result object (the execution must be over)."""
        value = self.result()
        assert value is not None, "the execution has not finished"
        return value

    def output(self, key: str) -> Any:
        """Node `key`'s stored output, unpacked."""
        return unpack(self.state.outputs[EXECUTION_ID][key], self.blobs)

    def record(self, key: str) -> NodeRecord:
        """Node `key`'s run state."""
        return self.state.snapshot(EXECUTION_ID, []).nodes[key]


def outcomes(runs: Mapping[str, NodeRun]) -> dict[str, Outcome]:
    """Outcome per node key."""
    return {key: run.outcome for key, run in runs.items()}


def collector(node_id: str) -> dict[str, Any]:
    """An edit-fields node whose result shows what it received on ports and as `$input`."""
    return node(
        node_id,
        "edit-fields",
        values={"ports": "{{$inputs}}", "main": "{{$input}}"},
        keepOnlySet=True,
    )


def emit(node_id: str, **output: Any) -> dict[str, Any]:
    """An `emit` node with this whole output."""
    return node(node_id, "emit", output=output)


# --- the result object -------------------------------------------------------------------------


def test_linear_run_succeeds_with_the_contract_result(registry: NodeRegistry) -> None:
    model = blueprint(
        [
            node("make", "edit-fields", values={"message": "hi"}, keepOnlySet=True),
            node("shout", "transform", transformFunction="item => item.message.toUpperCase()"),
        ],
        chain_edges("make", "shout"),
    )
    execution = Execution(registry, model)
    runs = execution.run_all()
    assert outcomes(runs) == {"make": Outcome.SUCCEEDED, "shout": Outcome.SUCCEEDED}
    assert [run.attempt for run in runs.values()] == [1, 1]
    result = execution.final()
    assert set(result) == RESULT_KEYS
    assert result["id"] == EXECUTION_ID
    assert result["status"] == "succeeded"
    assert result["success"] is True
    assert result["error"] is None
    assert result["data"] == {"shout": execution.output("shout")}
    assert result["data"]["shout"]["result"] == "HI"
    assert sorted(result["executedNodes"]) == ["make", "shout"]
    assert isinstance(result["duration_ms"], int)
    assert result["duration_ms"] >= 0
    trace = {entry["nodeId"]: entry for entry in result["trace"]}
    assert set(trace) == {"make", "shout"}
    assert trace["make"]["status"] == "succeeded"
    assert trace["make"]["attempts"] == 1
    assert trace["make"]["worker"] == "unit"
    assert trace["make"]["error"] is None


def test_data_holds_every_top_level_sink_and_nothing_else(registry: NodeRegistry) -> None:
    model = blueprint(
        [emit("src", result=1), emit("left", result="L"), emit("right", result="R")],
        [edge("src", "left"), edge("src", "right")],
    )
    execution = Execution(registry, model)
    execution.run_all()
    assert execution.final()["data"] == {"left": {"result": "L"}, "right": {"result": "R"}}


def test_the_execution_is_not_over_before_its_last_node(registry: NodeRegistry) -> None:
    model = blueprint([emit("a", result=1), emit("b", result=2)], chain_edges("a", "b"))
    execution = Execution(registry, model)
    execution.run("a")
    assert execution.result() is None
    execution.run("b")
    assert execution.final()["status"] == "succeeded"


# --- data flow ---------------------------------------------------------------------------------


def test_source_handle_picks_that_key_of_the_output(registry: NodeRegistry) -> None:
    model = blueprint(
        [emit("src", result="R", other="O"), collector("sink")],
        [edge("src", "sink", sourceHandle="other", targetHandle="input")],
    )
    execution = Execution(registry, model)
    execution.run_all()
    assert execution.output("sink")["result"] == {"ports": {"input": "O"}, "main": "O"}


@pytest.mark.parametrize("handles", [{"sourceHandle": "output"}, {}], ids=["missing", "none"])
def test_without_a_matching_handle_the_whole_output_flows(
    registry: NodeRegistry, handles: dict[str, str]
) -> None:
    model = blueprint(
        [emit("src", result="R", other="O"), collector("sink")],
        [edge("src", "sink", targetHandle="input", **handles)],
    )
    execution = Execution(registry, model)
    execution.run_all()
    received = execution.output("sink")["result"]
    assert received["ports"] == {"input": {"result": "R", "other": "O"}}
    assert received["main"] == "R"  # `$input` sees the output's result


def test_no_target_handle_means_the_default_port(registry: NodeRegistry) -> None:
    model = blueprint([emit("src", result="R"), collector("sink")], [edge("src", "sink")])
    execution = Execution(registry, model)
    execution.run_all()
    assert execution.output("sink")["result"]["ports"] == {"default": {"result": "R"}}


def test_several_edges_into_one_port_give_a_list_in_edge_order(registry: NodeRegistry) -> None:
    model = blueprint(
        [emit("a", result="A"), emit("b", result="B"), emit("c", result="C"), collector("sink")],
        [
            edge("c", "sink", targetHandle="in"),
            edge("a", "sink", targetHandle="in"),
            edge("b", "sink", targetHandle="in"),
        ],
    )
    execution = Execution(registry, model)
    execution.run_all()
    received = execution.output("sink")["result"]
    assert received["main"] == ["C", "A", "B"]
    assert received["ports"] == {"in": [{"result": "C"}, {"result": "A"}, {"result": "B"}]}


def test_edges_into_several_ports_give_a_mapping_by_port(registry: NodeRegistry) -> None:
    model = blueprint(
        [emit("a", result="A"), emit("b", result="B"), collector("sink")],
        [edge("a", "sink", targetHandle="left"), edge("b", "sink", targetHandle="right")],
    )
    execution = Execution(registry, model)
    execution.run_all()
    assert execution.output("sink")["result"]["main"] == {"left": "A", "right": "B"}


def test_a_node_without_incoming_edges_receives_the_execution_inputs(
    registry: NodeRegistry,
) -> None:
    execution = Execution(registry, blueprint([collector("entry")]), {"name": "Ada", "n": 2})
    execution.run_all()
    received = execution.output("entry")["result"]
    assert received == {"ports": {"name": "Ada", "n": 2}, "main": {"name": "Ada", "n": 2}}


def test_variables_defaults_are_overridden_by_inputs(registry: NodeRegistry) -> None:
    model = blueprint(
        [
            node(
                "read",
                "edit-fields",
                values={"p": "{{$vars.path}}", "m": "{{$vars.mode}}"},
                keepOnlySet=True,
            )
        ],
        variables={
            "path": {"type": "string", "defaultValue": "/data/default.csv"},
            "mode": {"type": "string", "defaultValue": "fast"},
        },
    )
    execution = Execution(registry, model, {"path": "/data/given.csv"})
    execution.run_all()
    assert execution.output("read")["result"] == {"p": "/data/given.csv", "m": "fast"}


def test_templates_see_upstream_results(registry: NodeRegistry) -> None:
    model = blueprint(
        [
            emit("src", result={"message": "hello", "items": [{"n": 4}]}),
            node(
                "use",
                "edit-fields",
                values={"text": "say {{$input.message}}", "n": "{{$input.items[0].n}}"},
                keepOnlySet=True,
            ),
        ],
        chain_edges("src", "use"),
    )
    execution = Execution(registry, model)
    execution.run_all()
    assert execution.output("use")["result"] == {"text": "say hello", "n": 4}


def test_execution_inputs_never_override_parameters(registry: NodeRegistry) -> None:
    model = blueprint([node("set", "edit-fields", values={"from": "parameter"}, keepOnlySet=True)])
    execution = Execution(registry, model, {"values": {"from": "input"}})
    execution.run_all()
    assert execution.output("set")["result"] == {"from": "parameter"}


def test_a_port_named_like_a_parameter_overrides_it(registry: NodeRegistry) -> None:
    model = blueprint(
        [
            emit("src", result="ignored", fields={"from": "port"}),
            node("set", "edit-fields", values={"from": "parameter"}, keepOnlySet=True),
        ],
        [edge("src", "set", sourceHandle="fields", targetHandle="values")],
    )
    execution = Execution(registry, model)
    execution.run_all()
    assert execution.output("set")["result"] == {"from": "port"}


def test_inputs_do_not_override_base_parameters(registry: NodeRegistry) -> None:
    model = blueprint([node("set", "edit-fields", values={"ran": True}, keepOnlySet=True)])
    execution = Execution(registry, model, {"enabled": False, "timeout": 1, "retries": 9})
    runs = execution.run_all()
    assert runs["set"].outcome is Outcome.SUCCEEDED
    assert execution.output("set")["result"] == {"ran": True}


def test_a_template_error_at_run_time_fails_the_node(registry: NodeRegistry) -> None:
    model = blueprint([node("wait", "delay", ms="{{$input.ms}}", retries=3)])
    execution = Execution(registry, model, {"ms": -5})
    runs = execution.run_all()
    assert runs["wait"].outcome is Outcome.FAILED  # invalid parameters are not retried
    error = execution.final()["error"]
    assert error["code"] == "INVALID_PARAMETERS"
    assert "parameters.ms" in error["message"]
    assert error["nodeId"] == "wait"


# --- disabled nodes ----------------------------------------------------------------------------


def test_a_disabled_node_is_skipped_and_passes_its_input_through(registry: NodeRegistry) -> None:
    model = blueprint(
        [
            emit("src", result={"v": 1}),
            node("off", "edit-fields", values={"never": True}, enabled=False),
            collector("sink"),
        ],
        chain_edges("src", "off", "sink"),
    )
    execution = Execution(registry, model)
    runs = execution.run_all()
    assert outcomes(runs) == {
        "src": Outcome.SUCCEEDED,
        "off": Outcome.SKIPPED,
        "sink": Outcome.SUCCEEDED,
    }
    assert execution.output("off") == {"result": {"v": 1}}
    assert execution.output("sink")["result"]["main"] == {"v": 1}
    assert execution.record("off").status is NodeStatus.SKIPPED
    result = execution.final()
    assert result["status"] == "succeeded"
    assert "off" not in result["executedNodes"]


def test_a_disabled_sink_counts_as_done(registry: NodeRegistry) -> None:
    model = blueprint(
        [emit("src", result=5), node("off", "delay", ms=60_000, enabled=False)],
        chain_edges("src", "off"),
    )
    execution = Execution(registry, model)
    execution.run_all()
    result = execution.final()
    assert result["success"] is True
    assert result["data"] == {"off": {"result": 5}}


@pytest.mark.parametrize("name", ["enabled", "timeout", "retries"])
def test_a_templated_base_parameter_is_rejected_by_validation(
    registry: NodeRegistry, name: str
) -> None:
    model = blueprint([node("maybe", "delay", ms=0, **{name: "{{$vars.x}}"})])
    (problem,) = validate(model, registry)
    assert problem.path == f"nodes[0].parameters.{name}"
    assert problem.code == "INVALID_PARAMETERS"
    assert "literal" in problem.message


# --- retries and failures ---------------------------------------------------------------------


def test_a_retryable_failure_retries_while_attempt_is_within_retries(
    registry: NodeRegistry,
) -> None:
    model = blueprint([node("flaky", "fail", retries=2)])
    execution = Execution(registry, model)
    first, second, third = (execution.run("flaky") for _ in range(3))
    assert (first.outcome, first.attempt) == (Outcome.RETRY, 1)
    assert (second.outcome, second.attempt) == (Outcome.RETRY, 2)
    assert (third.outcome, third.attempt) == (Outcome.FAILED, 3)
    assert 0.8 <= first.retry_in_s <= 1.2  # exponential backoff with jitter
    assert 1.6 <= second.retry_in_s <= 2.4
    assert first.error == {
        "code": "TRANSPORT_ERROR",
        "message": "backend unavailable",
        "nodeId": "flaky",
    }
    result = execution.final()
    assert result["status"] == "failed"
    assert result["error"] == first.error
    assert result["trace"][0]["attempts"] == 3


def test_the_execution_stays_open_between_retries(registry: NodeRegistry) -> None:
    execution = Execution(registry, blueprint([node("flaky", "fail")]))  # default retries: 1
    assert execution.run("flaky").outcome is Outcome.RETRY
    assert execution.result() is None
    record = execution.record("flaky")
    assert record.status is NodeStatus.PENDING
    assert record.error is not None
    assert record.error["code"] == "TRANSPORT_ERROR"
    assert execution.run("flaky").outcome is Outcome.FAILED


def test_a_retry_that_succeeds_completes_the_execution(registry: NodeRegistry) -> None:
    execution = Execution(
        registry, blueprint([node("flaky", "fail", retries=3, succeed_from_attempt=2)])
    )
    assert execution.run("flaky").outcome is Outcome.RETRY
    second = execution.run("flaky")
    assert (second.outcome, second.attempt) == (Outcome.SUCCEEDED, 2)
    result = execution.final()
    assert result["success"] is True
    assert result["data"] == {"flaky": {"result": "ok on attempt 2"}}


def test_retries_zero_fails_at_once(registry: NodeRegistry) -> None:
    execution = Execution(registry, blueprint([node("flaky", "fail", retries=0)]))
    assert execution.run("flaky").outcome is Outcome.FAILED


def test_a_non_retryable_error_fails_at_once(registry: NodeRegistry) -> None:
    model = blueprint([node("bad", "fail", retries=5, retryable=False, code="RATE_LIMIT_EXCEEDED")])
    execution = Execution(registry, model)
    run = execution.run("bad")
    assert (run.outcome, run.attempt) == (Outcome.FAILED, 1)
    assert execution.final()["error"]["code"] == "RATE_LIMIT_EXCEEDED"


def test_a_node_bug_is_reported_not_raised(registry: NodeRegistry) -> None:
    execution = Execution(registry, blueprint([node("buggy", "crash", retries=0)]))
    assert execution.run("buggy").outcome is Outcome.FAILED
    error = execution.final()["error"]
    assert error["code"] == "EXECUTION_FAILED"
    assert "RuntimeError: oops, a bug" in error["message"]


def test_an_output_without_result_fails_without_retry(registry: NodeRegistry) -> None:
    execution = Execution(registry, blueprint([node("odd", "bad-output", retries=3)]))
    assert execution.run("odd").outcome is Outcome.FAILED
    assert "'result'" in execution.final()["error"]["message"]


def test_an_output_that_is_not_json_fails_with_serialization_failed(
    registry: NodeRegistry,
) -> None:
    execution = Execution(registry, blueprint([node("odd", "not-json")]))
    assert execution.run("odd").outcome is Outcome.FAILED
    assert execution.final()["error"]["code"] == "SERIALIZATION_FAILED"


def test_an_output_nested_too_deep_fails_with_serialization_failed(
    registry: NodeRegistry,
) -> None:
    execution = Execution(registry, blueprint([node("odd", "deep"), node("other", "emit")]))
    assert execution.run("odd").outcome is Outcome.FAILED
    error = execution.final()["error"]
    assert (error["code"], error["nodeId"]) == ("SERIALIZATION_FAILED", "odd")
    assert "odd" not in execution.state.outputs[EXECUTION_ID]


def test_a_result_that_cannot_be_stored_still_ends_the_execution(registry: NodeRegistry) -> None:
    execution = Execution(registry, blueprint([node("odd", "emit")]))
    deep = '{"result": ' + "[" * 900 + "0" + "]" * 900 + "}"  # stored before outputs were checked
    execution.state.complete(EXECUTION_ID, "odd", deep, NodeStatus.SUCCEEDED)
    assert finalize(EXECUTION_ID, execution.stores, ExecutionStatus.SUCCEEDED)
    final = execution.final()
    assert (final["status"], final["error"]["code"]) == ("failed", "SERIALIZATION_FAILED")
    assert final["data"] == {}
    assert execution.state.events_of[EXECUTION_ID][-1].type.value == "execution.failed"


class FullBlobStore(MemoryBlobStore):
    """A blob store whose disk is full."""

    def put(self, data: bytes) -> str:
        raise BlobWriteFailed("no space left on device")


def test_a_full_blob_store_at_finalize_still_ends_the_execution(registry: NodeRegistry) -> None:
    execution = Execution(registry, blueprint([emit("big", result="x" * 100)]))
    # the node's output stays under the threshold; the result (with its trace) goes over it
    execution.stores = Stores(execution.state, FullBlobStore(), blob_threshold_bytes=300)
    assert execution.run("big").outcome is Outcome.SUCCEEDED
    final = json.loads(execution.state.results[EXECUTION_ID])
    assert (final["status"], final["error"]["code"]) == ("failed", "INTERNAL_ERROR")
    assert "no space left" in final["error"]["message"] and final["data"] == {}


def test_a_node_past_its_timeout_fails_with_timeout(registry: NodeRegistry) -> None:
    execution = Execution(
        registry, blueprint([node("slow", "delay", ms=5000, timeout=100, retries=0)])
    )
    assert execution.run("slow").outcome is Outcome.FAILED
    assert execution.final()["error"]["code"] == "TIMEOUT"


def test_a_failure_ends_the_execution_and_later_nodes_are_ignored(
    registry: NodeRegistry,
) -> None:
    model = blueprint(
        [emit("first", result=1), node("broken", "fail", retries=0), node("after", "count")],
        chain_edges("first", "broken", "after"),
    )
    execution = Execution(registry, model)
    runs = execution.run_all()
    assert outcomes(runs) == {
        "first": Outcome.SUCCEEDED,
        "broken": Outcome.FAILED,
        "after": Outcome.IGNORED,
    }
    assert CountNode.calls == []
    result = execution.final()
    assert result["status"] == "failed"
    assert result["success"] is False
    assert result["error"] == {
        "code": "TRANSPORT_ERROR",
        "message": "backend unavailable",
        "nodeId": "broken",
    }
    assert set(result) == RESULT_KEYS
    assert execution.record("after").status is NodeStatus.CANCELLED  # drained by the failure
    assert execution.record("broken").status is NodeStatus.FAILED
    assert {step["nodeId"]: step["status"] for step in result["trace"]}["after"] == "cancelled"


def test_a_failure_inside_a_group_names_the_nested_node(registry: NodeRegistry) -> None:
    model = blueprint([group("g", [node("inner", "fail", retries=0)])])
    execution = Execution(registry, model)
    execution.run_all()
    assert execution.final()["error"]["nodeId"] == "g/inner"


def test_a_node_after_the_execution_timeout_fails_with_timeout(registry: NodeRegistry) -> None:
    model = blueprint([emit("a", result=1)], settings={"runtime": {"timeout": 60_000}})
    execution = Execution(registry, model)
    execution.state.meta[EXECUTION_ID]["deadline_ms"] = str(now_ms() - 1)
    assert execution.run("a").outcome is Outcome.FAILED
    assert execution.final()["error"]["code"] == "TIMEOUT"


def test_a_paused_execution_starts_no_node(registry: NodeRegistry) -> None:
    execution = Execution(registry, blueprint([node("a", "count")]))
    execution.state.meta[EXECUTION_ID]["status"] = "paused"
    assert execution.run("a").outcome is Outcome.IGNORED
    assert CountNode.calls == []
    assert execution.record("a").status is NodeStatus.PENDING


# --- at-least-once delivery ---------------------------------------------------------------------


def test_a_duplicate_delivery_of_a_finished_node_is_ignored(registry: NodeRegistry) -> None:
    model = blueprint(
        [node("a", "count"), node("b", "count"), node("c", "count")], chain_edges("a", "b", "c")
    )
    execution = Execution(registry, model, {"x": 1})
    assert execution.run("a").outcome is Outcome.SUCCEEDED
    assert execution.run("a").outcome is Outcome.IGNORED
    assert execution.run("a").outcome is Outcome.IGNORED
    assert execution.run("b").outcome is Outcome.SUCCEEDED
    assert execution.result() is None  # two of three done, however often `a` was delivered
    assert execution.run("c").outcome is Outcome.SUCCEEDED
    final_text = execution.state.result(EXECUTION_ID)
    assert execution.run("c").outcome is Outcome.IGNORED
    assert execution.state.result(EXECUTION_ID) == final_text
    assert CountNode.calls == ["a", "b", "c"]
    assert execution.record("a").attempts == 1
    assert execution.final()["data"] == {"c": {"result": {"x": 1}}}


def test_an_unknown_node_or_execution_is_ignored(registry: NodeRegistry) -> None:
    execution = Execution(registry, blueprint([emit("a", result=1)]))
    assert execution.run("nope").outcome is Outcome.IGNORED
    assert run_node("other", "a", execution.stores, registry).outcome is Outcome.IGNORED


# --- large outputs -------------------------------------------------------------------------------


def test_large_outputs_go_to_the_blob_store_and_flow_in_full(registry: NodeRegistry) -> None:
    big = "x" * 5000
    model = blueprint(
        [
            node("make", "edit-fields", values={"big": big}, keepOnlySet=True),
            node("measure", "transform", transformFunction="item => item.big.length"),
            node("echo", "edit-fields", values={"copy": "{{$input.big}}"}, keepOnlySet=True),
        ],
        [edge("make", "measure"), edge("make", "echo")],
    )
    execution = Execution(registry, model, blob_threshold_bytes=1024)
    runs = execution.run_all()
    assert set(outcomes(runs).values()) == {Outcome.SUCCEEDED}
    stored = json.loads(execution.state.outputs[EXECUTION_ID]["make"])
    reference = stored["result"]["big"]  # the string is a blob; the output stays inline
    assert reference == {"$blob": reference["$blob"], "bytes": 5000, "kind": "text"}
    assert stored["data"]["big"] == reference  # the same content, in two places, stored once
    assert execution.blobs.blobs[reference["$blob"]] == big.encode()
    small = json.loads(execution.state.outputs[EXECUTION_ID]["measure"])
    assert small["result"] == 5000  # under the threshold: stored inline
    result = execution.final()
    assert result["data"]["measure"]["result"] == 5000
    assert result["data"]["echo"]["result"] == {"copy": big}


# --- nested groups -----------------------------------------------------------------------------


def test_a_nested_groups_output_is_its_sink_childs_output(registry: NodeRegistry) -> None:
    model = blueprint(
        [
            emit("top", result={"t": 1}),
            group(
                "g",
                [
                    node("first", "edit-fields", values={"c": 1}),
                    node("last", "edit-fields", values={"got": "{{$input}}"}, keepOnlySet=True),
                ],
                chain_edges("first", "last"),
            ),
        ],
        chain_edges("top", "g"),
    )
    execution = Execution(registry, model)
    runs = execution.run_all()
    assert list(runs) == ["top", "g/first", "g/last", "g"]
    assert set(outcomes(runs).values()) == {Outcome.SUCCEEDED}
    assert execution.output("g/first")["result"] == {"t": 1, "c": 1}  # entry child gets g's input
    collected = dict(execution.output("g"))
    assert collected.pop("metadata")["childNodesExecuted"] == 2
    assert collected == execution.output("g/last")
    assert execution.final()["data"] == {"g": execution.output("g")}
    assert execution.output("g")["result"] == {"got": {"t": 1, "c": 1}}


def test_a_group_with_several_sinks_maps_child_ids(registry: NodeRegistry) -> None:
    model = blueprint([group("g", [emit("x", result="X"), emit("y", result="Y")])])
    execution = Execution(registry, model)
    execution.run_all()
    output = execution.final()["data"]["g"]
    assert output["result"] == {"x": "X", "y": "Y"}


def test_groups_nested_three_deep(registry: NodeRegistry) -> None:
    model = blueprint(
        [group("a", [group("b", [group("c", [emit("leaf", result="deep")])])]), collector("end")],
        chain_edges("a", "end"),
    )
    execution = Execution(registry, model)
    runs = execution.run_all()
    assert list(runs) == ["a/b/c/leaf", "a/b/c", "a/b", "a", "end"]
    assert execution.final()["data"]["end"]["result"]["main"] == "deep"


def test_an_empty_group_returns_its_input_map(registry: NodeRegistry) -> None:
    model = blueprint([emit("src", result=3), group("g", [])], chain_edges("src", "g"))
    execution = Execution(registry, model)
    runs = execution.run_all()
    assert runs["g"].outcome is Outcome.SUCCEEDED
    output = execution.final()["data"]["g"]
    assert output["result"] == {"default": {"result": 3}}  # Atomiton's: the whole input map
    assert output["metadata"]["childNodesExecuted"] == 0
