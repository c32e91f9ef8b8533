"""`loop`: run a body sub-graph for each item, in parallel across workers, results in order."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from nodes.base import ExpandingNode, NodeContext, NodeParameters, settled_error
from nodes.errors import NodeError


class LoopParameters(NodeParameters):
    """Parameters of `loop` (Atomiton's names; `breakOnError: true` means
    `continueOnError: false`)."""

    loopType: Literal["forEach", "times", "forRange"] = "forEach"
    items: list[Any] | None = Field(default=None, description="Items (else the input)")
    iterateOver: str | None = Field(default=None, description="Key of the input holding items")
    times: int = Field(default=10, ge=0)
    startValue: int = 0
    endValue: int = 10
    stepSize: int = 1
    concurrency: int = Field(default=5, ge=1, le=1000, description="Items running at once")
    parallel: bool = Field(default=True, description="false runs one item at a time")
    maxIterations: int = Field(default=1000, ge=1, le=100_000)
    continueOnError: bool = True
    breakOnError: bool | None = None


class LoopNode(ExpandingNode[LoopParameters]):
    """For each item (or `times`, or a range) run the body nodes with the item as their input;
    output `result` is the list of each item's result, `errors` the items that failed."""

    type_name = "loop"
    description = "Run a body of nodes for each item, in parallel across workers"
    parameters_model = LoopParameters

    def items(self, params: LoopParameters, context: NodeContext) -> list[Any]:
        """The items, checked against maxIterations."""
        found = self._items(params, context)
        if len(found) > params.maxIterations:
            raise NodeError(
                f"{len(found)} items exceed maxIterations={params.maxIterations}",
                retryable=False,
            )
        return found

    def _items(self, params: LoopParameters, context: NodeContext) -> list[Any]:
        if params.loopType == "times":
            return list(range(params.times))
        if params.loopType == "forRange":
            if params.stepSize == 0:
                raise NodeError("stepSize must not be 0", retryable=False)
            return list(range(params.startValue, params.endValue, params.stepSize))
        source = params.items if params.items is not None else context.data
        if params.iterateOver is not None:
            if not isinstance(source, dict) or params.iterateOver not in source:
                raise NodeError(
                    f"the input has no {params.iterateOver!r} to iterate over", retryable=False
                )
            source = source[params.iterateOver]
        if not isinstance(source, list):
            kind = type(source).__name__
            raise NodeError(f"loop needs a list of items, got {kind}", retryable=False)
        return source

    def collect(
        self, params: LoopParameters, context: NodeContext, outcomes: list[Any]
    ) -> Mapping[str, Any]:
        """Results in item order; failed items are listed in `errors` with their index."""
        results: list[Any] = []
        errors: list[dict[str, Any]] = []
        for index, outcome in enumerate(outcomes):
            error = settled_error(outcome)
            if error is not None:
                errors.append({"index": index, "error": error})
            results.append(None if error else _result_of(outcome))
        return {
            "result": results,
            "results": results,
            "iterationCount": len(outcomes),
            "errors": errors,
            "success": not errors,
        }

    def lanes(self, params: LoopParameters) -> int:
        """How many items may run at once."""
        return params.concurrency if params.parallel else 1


def _result_of(outcome: Any) -> Any:
    return outcome.get("result") if isinstance(outcome, dict) and "result" in outcome else outcome
