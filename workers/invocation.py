"""Preparing a node call: its input ports, rendered and validated parameters, its context."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import AliasChoices, ValidationError

from conductor.model.plan import PlannedNode
from nodes.base import BASE_PARAMETERS, Node, NodeContext, NodeEnvironment, NodeParameters
from nodes.branching import delivers
from nodes.errors import InvalidParameters, NodeError, UnknownNodeType
from nodes.output_budget import OutputBudget
from nodes.registry import NodeRegistry
from nodes.templates import render_value
from storage.blobs import BlobStore, materialize, unpack
from storage.state import NodeLoad


@dataclass(frozen=True)
class Invocation:
    """A node instance with its validated parameters and context, ready to call."""

    node: Node[Any]
    params: NodeParameters
    context: NodeContext

    def call(self, method: Callable[[], Any]) -> Any:
        """Call `method`; anything but a NodeError becomes one (never crash the worker)."""
        try:
            return method()
        except NodeError:
            raise
        except RecursionError as exc:  # data nested too deep for the node: the same every time
            message = f"the node's data is nested too deep to handle ({exc})"
            raise NodeError(message, retryable=False) from exc
        except Exception as exc:  # a node's own bug or a time limit
            late = time.monotonic() >= self.context.deadline
            code = "TIMEOUT" if late else "EXECUTION_FAILED"
            raise NodeError(f"{type(exc).__name__}: {exc}", code=code) from exc

    def run(self) -> Mapping[str, Any]:
        """The node's output, checked to be a mapping with `result`."""
        output = self.call(lambda: self.node.run(self.params, self.context))
        if not isinstance(output, Mapping) or "result" not in output:
            message = f"node type {self.node.type_name!r} returned no mapping with a 'result' key"
            raise NodeError(message, retryable=False)
        return output


def prepare(
    execution_id: str,
    spec: PlannedNode,
    *,
    load: NodeLoad,
    registry: NodeRegistry,
    environment: NodeEnvironment,
    inputs: tuple[dict[str, Any], Any],
    on_progress: Callable[[float, str], None] = lambda fraction, message: None,
    stop: threading.Event | None = None,
) -> Invocation:
    """Render parameters, apply input overrides (an input port named like a parameter wins),
    validate, and build the context with the node's deadline."""
    try:
        node_type = registry.get(spec.type)
    except UnknownNodeType as exc:  # this worker lacks the plugin; a retry may land elsewhere
        raise NodeError(str(exc), code="NODE_TYPE_NOT_FOUND") from None
    # Large strings arrive as blob references: read them in, unless the node streams them.
    ports, data = inputs if node_type.streams_blobs else materialize(inputs)
    scope = {
        "input": data,
        "inputs": ports,
        "vars": load.variables,
        "execution": {"id": execution_id},
    }
    own = node_type.self_rendered_parameters
    # Text built by templates stops at the output limit: nothing larger is ever built.
    budget = OutputBudget(environment.max_output_bytes, what="the node's rendered parameters")
    raw = {k: v if k in own else render_value(v, scope, budget) for k, v in spec.parameters.items()}
    # Only ports fed by edges override parameters: a source node's "ports" are the execution's
    # inputs, and a caller must not be able to replace, say, a shell command's `command`.
    overrides = _overrides(node_type, ports) if spec.wires else {}
    for field in node_type.parameters_model.model_fields:
        spellings = _spellings(node_type.parameters_model, field)
        if spellings[0] in overrides:
            for name in spellings:
                raw.pop(name, None)
    try:
        params = node_type.parameters_model.model_validate({**raw, **overrides})
    except ValidationError as exc:
        raise InvalidParameters(_describe(exc)) from None
    context = NodeContext(
        execution_id=execution_id,
        node_id=spec.id,
        node_key=spec.key,
        inputs=ports,
        variables=load.variables,
        attempt=load.tries or load.attempt,
        deadline=_deadline(spec, load),
        data=data,
        environment=environment,
        finished_ms={
            wire.port: load.upstream_finished_ms.get(wire.source, 0) for wire in spec.wires
        },
        on_progress=on_progress,
        stop=stop or threading.Event(),
    )
    return Invocation(node_type(), params, context)


def _deadline(spec: PlannedNode, load: NodeLoad) -> float:
    """The node's timeout, cut short by the execution's own deadline."""
    deadline = time.monotonic() + spec.timeout_ms() / 1000
    if load.deadline_ms is not None:
        deadline = min(deadline, time.monotonic() + (load.deadline_ms - time.time() * 1000) / 1000)
    return deadline


def unpack_upstream(
    upstream: Mapping[str, str], blobs: BlobStore, *, lazy: bool = False
) -> dict[str, Any]:
    """The stored (packed) outputs of a node's upstream sources, as values; with `lazy`,
    large strings stay BlobText references (a node run: `prepare` reads them in as needed)."""
    return {source: unpack(text, blobs, lazy=lazy) for source, text in upstream.items()}


def resolve_inputs(
    spec: PlannedNode,
    inputs: Mapping[str, Any],
    upstream: Mapping[str, str],
    blobs: BlobStore,
) -> tuple[dict[str, Any], Any]:
    """Input ports from the wires, and the node's main input (`$input`), given the execution's
    `inputs` and the stored (packed) outputs of the node's `upstream` sources."""
    return arrange_inputs(spec, inputs, unpack_upstream(upstream, blobs))


def arrange_inputs(
    spec: PlannedNode, inputs: Mapping[str, Any], outputs: Mapping[str, Any]
) -> tuple[dict[str, Any], Any]:
    """Input ports from the wires, and the node's main input (`$input`), given the execution's
    `inputs` and the outputs of the node's upstream sources.

    An edge delivers the source's output, or its `sourceHandle` key when it has one; an edge
    from a skipped node, or from a branch its node did not take, delivers nothing. Several
    edges that deliver into one port deliver a list, in edge order. In `$input`, a whole node
    output stands for its `result`. A node with no wires receives the execution's inputs.
    """
    if not spec.wires:
        return dict(inputs), dict(inputs)
    ports: dict[str, list[Any]] = {}
    mains: dict[str, list[Any]] = {}
    for wire in spec.wires:
        output = outputs.get(wire.source)
        handle = wire.source_handle
        if not delivers(output, handle):
            continue
        if isinstance(output, dict) and handle is not None and handle in output:
            value = main = output[handle]
        else:
            value = output
            main = output["result"] if isinstance(output, dict) and "result" in output else output
        ports.setdefault(wire.port, []).append(value)
        mains.setdefault(wire.port, []).append(main)
    flat_ports = {port: vals[0] if len(vals) == 1 else vals for port, vals in ports.items()}
    flat_mains = {port: vals[0] if len(vals) == 1 else vals for port, vals in mains.items()}
    # One port or several by the Blueprint, whatever arrived: a join keeps its shape.
    wired = list(dict.fromkeys(wire.port for wire in spec.wires))
    data = flat_mains.get(wired[0]) if len(wired) == 1 else flat_mains
    return flat_ports, data


def _spellings(model: type[NodeParameters], field: str) -> list[str]:
    """The names a field accepts as input: its aliases (the first one validates) or itself."""
    alias = model.model_fields[field].validation_alias
    if isinstance(alias, str):
        return [alias, field]
    if isinstance(alias, AliasChoices):
        return [choice for choice in alias.choices if isinstance(choice, str)] + [field]
    return [field]


def _overrides(node_type: type[Node[Any]], ports: Mapping[str, Any]) -> dict[str, Any]:
    """Ports named like a parameter (or one of its aliases), keyed by a name that validates;
    base and literal parameters are never overridden."""
    model = node_type.parameters_model
    fixed = BASE_PARAMETERS | node_type.literal_parameters
    found: dict[str, Any] = {}
    for field in model.model_fields:
        spellings = _spellings(model, field)
        given = next((name for name in spellings if name in ports), None)
        if field not in fixed and given is not None:
            found[spellings[0]] = ports[given]
    return found


def _describe(exc: ValidationError) -> str:
    return "; ".join(
        f"parameters.{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in exc.errors()
    )
