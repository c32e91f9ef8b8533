"""`parallel`: run child nodes concurrently, or, without children, its `operations`; `all`,
`allSettled` or `race`, with Atomiton's outputs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import AliasChoices, Field

from nodes.base import Node, NodeContext, NodeParameters, settled_error
from nodes.containers import child_ports, now_ms
from nodes.errors import NodeError
from nodes.operations import OperationLimits, run_operations


class ParallelParameters(NodeParameters):
    """Parameters of `parallel`. Children always run as soon as their inputs are ready, on as
    many workers as are free; `concurrency` bounds the operations running at once."""

    strategy: Literal["all", "allSettled", "race"] = "allSettled"
    concurrency: int = Field(default=5, ge=1, le=50, description="Operations running at once")
    operationTimeout: float = Field(
        default=30_000, ge=1000, le=300_000, description="Time limit of each operation, ms"
    )
    globalTimeout: float = Field(
        default=120_000, ge=5000, le=600_000, description="Time limit of them all, ms"
    )
    failFast: bool = Field(default=False, description="A failure stops the rest")
    maintainOrder: bool = Field(
        default=True,
        validation_alias=AliasChoices("maintainOrder", "preserveOrder"),
        description="Results in input order (else in completion order)",
    )
    operations: list[Any] | None = Field(
        default=None, description="Operations to run when there are no children (else the input's)"
    )


class ParallelNode(Node[ParallelParameters]):
    """With children: `results` holds each child's result (or `{error}`), `result` the
    outcomes by strategy (`allSettled`: `{id, status, value | reason}`; `all`: the values;
    `race`: the first child to succeed). Without: runs `operations` (see nodes.operations);
    given none, its `result` is its input."""

    type_name = "parallel"
    description = "Run child nodes (or operations) concurrently: all, allSettled or race"
    parameters_model = ParallelParameters
    # The Blueprint's own operations may hold code; operations arriving as data (on the
    # `operations` port, as Atomiton reads them) are values only (nodes.operations).
    literal_parameters = frozenset({"operations"})
    variable_parts_hint = "give each operation its own parameters"

    def run(self, params: ParallelParameters, context: NodeContext) -> Mapping[str, Any]:
        if context.container is None:
            found = _operations(params, context)
            limits = _limits(params, context, run_code=params.operations is not None)
            output = run_operations(found or [], limits, context.stop)
            # Given no operations at all, it has nothing to run: its input goes on, as a
            # disabled node's (Atomiton's image-processor puts one between a loop and its work).
            return {"result": output["results"] if found is not None else context.data, **output}
        return self._children(params, context)

    def _children(self, params: ParallelParameters, context: NodeContext) -> dict[str, Any]:
        entered = context.container.entered_ms if context.container else now_ms()
        duration = max(0, now_ms() - entered)
        if "globalTimeout" in params.model_fields_set and duration > params.globalTimeout:
            limit = round(params.globalTimeout)
            raise NodeError(f"Global timeout exceeded ({limit}ms)", code="TIMEOUT", retryable=False)
        settled = [_settle(child, out) for child, out in child_ports(context.inputs).items()]
        if not params.maintainOrder:
            settled.sort(key=lambda entry: context.finished_ms.get(entry["id"], 0))
        failed = sum(entry["status"] == "rejected" for entry in settled)
        summary = {
            "results": [_atomiton_value(entry) for entry in settled],
            "completed": len(settled) - failed,
            "failed": failed,
            "duration": duration,
            "success": failed == 0,
            "settled": settled,
        }
        if params.strategy == "race":
            return {**summary, **self._race(settled, context)}
        if params.strategy == "allSettled":
            return {"result": settled, **summary}
        if failed:  # children inside a settling scope (a loop item) settle even under `all`
            reasons = "; ".join(str(e["reason"].get("message")) for e in settled if "reason" in e)
            raise NodeError(f"{failed} child(ren) failed: {reasons}", retryable=False)
        return {"result": [entry.get("value") for entry in settled], **summary}

    @staticmethod
    def _race(settled: list[dict[str, Any]], context: NodeContext) -> dict[str, Any]:
        fulfilled = [entry for entry in settled if entry["status"] == "fulfilled"]
        if not fulfilled:
            reasons = "; ".join(str(entry["reason"].get("message")) for entry in settled)
            raise NodeError(f"every child of the race failed: {reasons}", retryable=False)
        winner = min(fulfilled, key=lambda e: context.finished_ms.get(e["id"], 0))
        return {
            "result": winner["value"],
            "winner": winner["id"],
            "results": [winner["value"]],
            "completed": 1,
            "failed": 0,
            "success": True,
        }


def _operations(params: ParallelParameters, context: NodeContext) -> list[Any] | None:
    """The parameter, else the input's `operations` (Atomiton's), else None."""
    found = params.operations if params.operations is not None else context.get_input("operations")
    if found is None:
        return None
    if not isinstance(found, list):
        kind = type(found).__name__
        raise NodeError(f"operations: must be a list, got {kind}", retryable=False)
    return found


def _limits(params: ParallelParameters, context: NodeContext, *, run_code: bool) -> OperationLimits:
    return OperationLimits(
        run_code=run_code,
        strategy=params.strategy,
        concurrency=params.concurrency,
        operation_timeout_s=params.operationTimeout / 1000,
        global_timeout_s=params.globalTimeout / 1000,
        fail_fast=params.failFast,
        maintain_order=params.maintainOrder,
        node_deadline=context.deadline,
    )


def _settle(child: str, output: Any) -> dict[str, Any]:
    error = settled_error(output)
    if error is not None:
        return {"id": child, "status": "rejected", "reason": error}
    value = output.get("result") if isinstance(output, dict) and "result" in output else output
    return {"id": child, "status": "fulfilled", "value": value}


def _atomiton_value(entry: dict[str, Any]) -> Any:
    """A fulfilled child's value, or `{error: <message>}` for a failed one."""
    if entry["status"] == "fulfilled":
        return entry["value"]
    return {"error": entry["reason"].get("message")}
