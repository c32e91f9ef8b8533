"""Preparing a node call: which inputs may override which parameters."""

from __future__ import annotations

from conductor.model.plan import PlannedNode, Wire
from nodes.base import NodeEnvironment
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
