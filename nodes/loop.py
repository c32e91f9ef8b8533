"""`loop`: run a body sub-graph for each item, in parallel across workers, results in order;
without a body, Atomiton's iteration records (forEach, times, while)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import AliasChoices, Field

from nodes.base import ExpandingNode, NodeContext, NodeParameters, settled_error
from nodes.branching import skip_reason
from nodes.containers import ITEM_PORT, iso_timestamp, now_ms
from nodes.errors import NodeError
from nodes.js_condition import WhileRun, run_while


class LoopParameters(NodeParameters):
    """Parameters of `loop` (Atomiton's names; `items` for `array`, `times` for `count`,
    `breakOnError: true` for `continueOnError: false`)."""

    loopType: Literal["forEach", "times", "while", "forRange"] = "forEach"
    array: list[Any] | None = Field(
        default=None,
        validation_alias=AliasChoices("array", "items"),
        description="forEach items (else the input's `array`, else the input itself)",
    )
    iterateOver: str | None = Field(default=None, description="Key of the input holding items")
    count: float = Field(
        default=10,
        ge=1,
        le=10_000,
        validation_alias=AliasChoices("count", "times"),
        description="times: how many iterations (a fraction is truncated)",
    )
    condition: str | None = Field(
        default=None,
        description="while: a JavaScript expression of `iteration` and `lastResult`",
    )
    collectResults: bool = Field(default=True, description="false leaves `results` empty")
    startValue: int = 0
    endValue: int = 10
    stepSize: int = 1
    concurrency: int = Field(default=5, ge=1, le=1000, description="Items running at once")
    parallel: bool = Field(default=True, description="false runs one item at a time")
    maxIterations: int = Field(default=1000, ge=1, le=100_000, description="Iteration cap")
    continueOnError: bool = True
    breakOnError: bool | None = None


class LoopNode(ExpandingNode[LoopParameters]):
    """With a body: run it for each item; `result` lists each item's result, `results` holds
    Atomiton's records with each `result`, `errors` the items that failed (when every item
    failed, the loop fails with the first one's error). Without a body:
    Atomiton's records, its summary under `result` and at the top level."""

    type_name = "loop"
    description = "Run a body of nodes for each item, in parallel across workers"
    parameters_model = LoopParameters
    editor_parameters: ClassVar[frozenset[str]] = frozenset({"batchSize", "delay"})

    def run(self, params: LoopParameters, context: NodeContext) -> Mapping[str, Any]:
        """No body: one record per iteration, as Atomiton's stub, with its bugs fixed."""
        started = time.monotonic()
        run = self._records(params, context)
        records, errors, capped = run.records, run.errors, run.capped
        summary = {
            "results": records if params.collectResults else [],
            "iterationCount": len(records),
            "errors": errors,
            "success": not errors,
            "duration": int((time.monotonic() - started) * 1000),
            "completed": not errors and not capped,
            "stopped": bool(errors) or capped,
        }
        top = {key: summary[key] for key in ("results", "iterationCount", "errors", "success")}
        return {"result": summary, **top, "duration": summary["duration"]}

    def _records(self, params: LoopParameters, context: NodeContext) -> WhileRun:
        """Records, condition errors, and whether the iteration cap cut the loop short."""
        if params.loopType == "while":
            return self._while(params, context)
        cap, stamp = params.maxIterations, iso_timestamp()
        if params.loopType == "times":
            wanted = int(params.count)
            records = [{"iteration": i, "timestamp": stamp} for i in range(min(wanted, cap))]
            return WhileRun(records, capped=wanted > cap)
        found = self._source(params, context)
        records = [
            {"index": i, "item": item, "processed": True, "timestamp": stamp}
            for i, item in enumerate(found[:cap])
        ]
        return WhileRun(records, capped=len(found) > cap)

    @staticmethod
    def _while(params: LoopParameters, context: NodeContext) -> WhileRun:
        return run_while(params.condition, params.maxIterations, context.remaining_s())

    def items(self, params: LoopParameters, context: NodeContext) -> list[Any]:
        """The items the body runs for, checked against maxIterations (a body's work is never
        cut short silently)."""
        if params.loopType == "while":
            run = self._while(params, context)
            if run.capped:
                raise NodeError(
                    f"the condition still held after maxIterations={params.maxIterations}",
                    retryable=False,
                )
            return [record["iteration"] for record in run.records]
        found = list(range(int(params.count))) if params.loopType == "times" else None
        found = self._source(params, context) if found is None else found
        if len(found) > params.maxIterations:
            raise NodeError(
                f"{len(found)} items exceed maxIterations={params.maxIterations}",
                retryable=False,
            )
        return found

    def _source(self, params: LoopParameters, context: NodeContext) -> list[Any]:
        """forEach: `array` (or a port feeding it), else the input's `iterateOver` key, its
        `array` key, or the input itself when it is a list; forRange: the range."""
        if params.loopType == "forRange":
            if params.stepSize == 0:
                raise NodeError("parameters.stepSize: must not be 0", retryable=False)
            return list(range(params.startValue, params.endValue, params.stepSize))
        source = params.array if params.array is not None else context.data
        if params.iterateOver is not None:
            source = _key_of(source, params.iterateOver, context)
        if isinstance(source, list):
            return source
        given = context.get_input("array")
        if isinstance(given, list):
            return given
        if source is None or isinstance(source, dict):  # Atomiton: nothing to iterate over
            return []
        raise NodeError(f"loop needs a list of items, got {type(source).__name__}", retryable=False)

    def collect(
        self, params: LoopParameters, context: NodeContext, outcomes: list[Any]
    ) -> Mapping[str, Any]:
        """Results in item order, each as Atomiton's record plus its `result`; failed items
        are listed in `errors` with their index."""
        finished = _finished_by_item(context.finished_ms)
        records: list[dict[str, Any]] = []
        values: list[Any] = []
        errors: list[dict[str, Any]] = []
        for index, outcome in enumerate(outcomes):
            error = settled_error(outcome)
            value = None if error else _result_of(outcome)
            record = self._record(params, index, _item(context, index), finished.get(index))
            record["result"] = value
            if skip_reason(outcome) is not None:  # its body took no branch to a sink
                record["skipped"] = skip_reason(outcome)
            if error is not None:
                errors.append({"index": index, "iteration": index, "error": error})
                record["error"] = error.get("message")
                if "processed" in record:
                    record["processed"] = False
            records.append(record)
            values.append(value)
        if errors and len(errors) == len(outcomes):
            raise _every_item_failed(errors[0]["error"], len(errors))
        if params.loopType == "while" and outcomes:  # a later condition failure ended the loop
            errors += self._while(params, context).errors
        entered = context.container.entered_ms if context.container else now_ms()
        keep = params.collectResults
        return {
            "result": values if keep else [],
            "results": records if keep else [],
            "iterationCount": len(outcomes),
            "errors": errors,
            "success": not errors,
            "duration": max(0, now_ms() - entered),
        }

    @staticmethod
    def _record(
        params: LoopParameters, index: int, item: Any, finished_ms: int | None
    ) -> dict[str, Any]:
        """Atomiton's record for this loop type; the timestamp is when the item's body ended."""
        stamp = iso_timestamp(finished_ms or None)
        if params.loopType == "times":
            return {"iteration": index, "timestamp": stamp}
        if params.loopType == "while":
            return {"iteration": index, "timestamp": stamp, "condition": True}
        return {"index": index, "item": item, "processed": True, "timestamp": stamp}

    def lanes(self, params: LoopParameters) -> int:
        """How many items may run at once."""
        return params.concurrency if params.parallel else 1


def _every_item_failed(first: Mapping[str, Any], count: int) -> NodeError:
    """continueOnError lets the other items go on; when none succeeded there is nothing to go
    on with, so the loop fails with the first item's error, naming the node that failed."""
    message = str(first.get("message", "the item failed"))
    if count > 1:
        message = f"{message} (all {count} items failed)"
    code = first.get("code")
    node_id = first.get("nodeId")
    return NodeError(
        message,
        code=code if isinstance(code, str) else None,
        retryable=False,
        node_id=node_id if isinstance(node_id, str) else None,
    )


def _key_of(source: Any, key: str, context: NodeContext) -> Any:
    """`iterateOver`: the key of the input, or of the one port's whole value (a node output
    whose `result` is not the mapping holding it, e.g. file-system list's `files`)."""
    if isinstance(source, dict) and key in source:
        return source[key]
    ports = list(context.inputs.values())
    if len(ports) == 1 and isinstance(ports[0], dict) and key in ports[0]:
        return ports[0][key]
    raise NodeError(f"the input has no {key!r} to iterate over", retryable=False)


def _item(context: NodeContext, index: int) -> Any:
    """The item `index` the body ran for (its virtual output, wired to the collecting loop)."""
    output = context.get_input(f"{ITEM_PORT}{index}")
    return output.get("item") if isinstance(output, dict) else None


def _finished_by_item(finished_ms: Mapping[str, int]) -> dict[int, int]:
    """When each item's last sink ended, from ports named `<index>/<sink>`."""
    latest: dict[int, int] = {}
    for port, ended in finished_ms.items():
        head, _, _ = port.partition("/")
        if head.isdigit():
            latest[int(head)] = max(latest.get(int(head), 0), ended)
    return latest


def _result_of(outcome: Any) -> Any:
    return outcome.get("result") if isinstance(outcome, dict) and "result" in outcome else outcome
