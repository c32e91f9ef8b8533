"""`group`: a nested Blueprint. Its children run as nodes of the same execution; the group
node itself runs after them and collects their outputs. Without children it returns its
input map, as Atomiton's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import Field

from nodes.base import Node, NodeContext, NodeParameters
from nodes.branching import BRANCHES
from nodes.containers import ContainerRun, child_ports, iso_timestamp, now_ms


class GroupParameters(NodeParameters):
    """Parameters of `group`: Atomiton's ranges for `timeout` and `retries` (the group node's
    own); `parallel` is accepted, children always run as soon as their inputs are ready."""

    timeout: int = Field(default=30_000, ge=1000, le=300_000, description="Time limit in ms")
    retries: int = Field(default=1, ge=0, le=10, description="Extra attempts after a failure")
    parallel: bool = Field(default=False, description="Accepted; children run when ready")


class GroupNode(Node[GroupParameters]):
    """Output: the one sink child's output; with several sink children, `result` maps each
    child id to its result and each child's whole output sits under its id too (a child
    called `result` is found in the `result` map only). `metadata` as Atomiton's."""

    type_name = "group"
    description = "A nested Blueprint whose children run inside the same execution"
    parameters_model = GroupParameters
    # A `nodes` list written under `parameters` is dropped, as Atomiton's validation drops it:
    # children are the node's own `nodes`.
    editor_parameters: ClassVar[frozenset[str]] = frozenset({"nodes", "edges"})

    def run(self, params: GroupParameters, context: NodeContext) -> Mapping[str, Any]:
        if context.container is None:  # no children: Atomiton's echo of the input map
            run = ContainerRun(entered_ms=now_ms())
            return {"result": dict(context.inputs), "metadata": metadata(context.node_id, run)}
        output = _collected(child_ports(context.inputs))
        return {**output, "metadata": metadata(context.node_id, context.container)}


def _collected(children: dict[str, Any]) -> dict[str, Any]:
    """The one sink child's output, or every sink's output with a `result` map."""
    if len(children) == 1:
        (only,) = children.values()
        if not isinstance(only, dict) or "result" not in only:
            return {"result": only}
        # a sink `if` chose its branches inside the group: the group's edges are not its own
        return {key: value for key, value in only.items() if key != BRANCHES}
    results = {
        child: out.get("result") if isinstance(out, dict) else out
        for child, out in children.items()
    }
    return {**children, "result": results}


def metadata(node_id: str, run: ContainerRun, failed_node: str | None = None) -> dict[str, Any]:
    """Atomiton's group `metadata`; `totalExecutionTime` runs from when the children could
    start."""
    found: dict[str, Any] = {
        "executedAt": iso_timestamp(),
        "nodeId": node_id or "group",
        "nodeType": "group",
        "childNodesExecuted": run.children,
        "totalExecutionTime": max(0, now_ms() - run.entered_ms),
    }
    if failed_node is not None:
        found["failedNode"] = failed_node
    return found


def group_failure(node_id: str, error: Mapping[str, Any], run: ContainerRun) -> dict[str, Any]:
    """The keys a group adds to a child's settled failure: Atomiton's `error` text and
    `metadata` with `failedNode`."""
    failed = str(error.get("nodeId") or "")
    child = failed.rsplit("/", 1)[-1]
    return {
        "error": f"Child node {child} failed: {error.get('message')}",
        "metadata": metadata(node_id, run, failed),
    }
