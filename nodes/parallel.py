"""`parallel`: run child nodes concurrently; `all`, `allSettled` or `race`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from nodes.base import Node, NodeContext, NodeParameters, settled_error
from nodes.errors import NodeError


class ParallelParameters(NodeParameters):
    """Parameters of `parallel`. Children always run as soon as their inputs are ready, on as
    many workers as are free; Atomiton's `concurrency` and order flags are accepted."""

    strategy: Literal["all", "allSettled", "race"] = "allSettled"
    failFast: bool = Field(default=False, description="A child's failure fails the execution")
    concurrency: int = Field(default=5, ge=1)
    preserveOrder: bool = True
    maintainOrder: bool = True


class ParallelNode(Node[ParallelParameters]):
    """Collect the children's outcomes: `all` lists their results (any failure already failed
    the execution); `allSettled` lists `{id, status, value | reason}`; `race` returns the
    first child to finish successfully."""

    type_name = "parallel"
    description = "Run child nodes concurrently (all, allSettled or race)"
    parameters_model = ParallelParameters

    def run(self, params: ParallelParameters, context: NodeContext) -> Mapping[str, Any]:
        children = dict(context.inputs)
        settled = [_settle(child, output) for child, output in children.items()]
        failed = sum(entry["status"] == "rejected" for entry in settled)
        summary = {"completed": len(settled) - failed, "failed": failed, "success": failed == 0}
        if params.strategy == "race":
            return {**summary, **self._race(settled, context), "success": True}
        if params.strategy == "allSettled":
            return {"result": settled, "results": settled, **summary}
        if failed:  # children inside a settling scope (a loop item) settle even under `all`
            reasons = "; ".join(str(e["reason"].get("message")) for e in settled if "reason" in e)
            raise NodeError(f"{failed} child(ren) failed: {reasons}", retryable=False)
        values = [entry.get("value") for entry in settled]
        return {"result": values, "results": settled, **summary}

    @staticmethod
    def _race(settled: list[dict[str, Any]], context: NodeContext) -> dict[str, Any]:
        fulfilled = [entry for entry in settled if entry["status"] == "fulfilled"]
        if not fulfilled:
            reasons = "; ".join(str(entry["reason"].get("message")) for entry in settled)
            raise NodeError(f"every child of the race failed: {reasons}", retryable=False)
        winner = min(fulfilled, key=lambda e: context.finished_ms.get(e["id"], 0))
        return {"result": winner["value"], "winner": winner["id"], "results": settled}


def _settle(child: str, output: Any) -> dict[str, Any]:
    error = settled_error(output)
    if error is not None:
        return {"id": child, "status": "rejected", "reason": error}
    value = output.get("result") if isinstance(output, dict) and "result" in output else output
    return {"id": child, "status": "fulfilled", "value": value}
