"""Preparing a node call: which inputs may override which parameters."""

from __future__ import annotations

import pytest

from conductor.model.plan import PlannedNode, Wire
from nodes.base import NodeEnvironment
from nodes.errors import NodeError
from nodes.registry import default_registry
from nodes.shell_command import ShellCommandParameters
from storage.state import ExecutionStatus, NodeLoad, NodeStatus
from workers.invocation import prepare


def load() -> NodeLoad:
    return NodeLoad(
        spec="{}", execution_status=ExecutionStatus.RUNNING, node_status=NodeStatus.RUNNING,
        attempt=1, total=2, deadline_ms=None, inputs={}, variables={}, upstream={},
    )  # fmt: skip


def test_an_input_cannot_replace_a_shell_commands_command_but_can_fill_stdin() -> None:
    spec = PlannedNode(
        key="sh", id="sh", type="shell-command",
        parameters={"command": "cat", "stdin": "literal"},
        wires=[Wire(source="up", port="command"), Wire(source="up2", port="stdin")],
    )  # fmt: skip
    ports = {"command": "rm -rf /", "stdin": "from upstream"}
    call = prepare(
        "x", spec, load=load(), registry=default_registry(),
        environment=NodeEnvironment(), inputs=(ports, ports),
    )  # fmt: skip
    assert isinstance(call.params, ShellCommandParameters)
    assert call.params.command == "cat"
    assert call.params.stdin == "from upstream"


def test_a_recursion_error_in_a_node_is_a_failure_that_is_not_retried() -> None:
    spec = PlannedNode(key="d", id="d", type="delay", parameters={"ms": 0})
    call = prepare(
        "x", spec, load=load(), registry=default_registry(),
        environment=NodeEnvironment(), inputs=({}, {}),
    )  # fmt: skip

    def too_deep() -> None:
        raise RecursionError("maximum recursion depth exceeded")

    with pytest.raises(NodeError, match="nested too deep") as caught:
        call.call(too_deep)
    assert caught.value.retryable is False and caught.value.code == "EXECUTION_FAILED"
