"""The node base class: typed parameters, a context, and a run method."""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

from conductor.model.blob_text import BlobWriter
from conductor.model.timeouts import DEFAULT_TIMEOUT_MS, MAX_TIMEOUT_MS
from nodes.containers import ContainerRun
from nodes.output_budget import DEFAULT_MAX_OUTPUT_BYTES

if TYPE_CHECKING:
    from nodes.blueprint_node import ChildRuns


class NodeParameters(BaseModel):
    """Base parameters every node accepts (Atomiton's): enabled, timeout (ms), retries, and
    the display-only label and description.

    Unknown keys are dropped at run time, as Atomiton does; validation warns about them
    (conductor.validation), and strict mode refuses them.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    enabled: bool = True
    timeout: int = Field(
        default=DEFAULT_TIMEOUT_MS, ge=1, le=MAX_TIMEOUT_MS, description="Time limit in ms"
    )
    retries: int = Field(default=1, ge=0, le=10, description="Extra attempts after a failure")
    label: str | None = Field(default=None, description="Display only")
    description: str | None = Field(default=None, description="Display only")

    @model_validator(mode="before")
    @classmethod
    def _one_spelling(cls, data: Any) -> Any:
        """A parameter given under its name and an alias is ambiguous: refuse it, naming both.
        (Two aliases may meet: Atomiton's sheetName and sheetIndex, the first one wins.)"""
        if isinstance(data, Mapping):
            for name, aliases in parameter_aliases(cls).items():
                given = [key for key in (name, *aliases) if key in data]
                if name in data and len(given) > 1:
                    raise ValueError(f"give one of {' and '.join(given)}: they are one parameter")
        return data


# Base parameters every node accepts; never taken from templates or input ports.
BASE_PARAMETERS = frozenset(NodeParameters.model_fields)


@dataclass(frozen=True)
class NodeEnvironment:
    """What the worker's configuration allows nodes: the files root, the shell, the
    addresses `http-request` may reach beyond the public internet (CONDUCTOR_HTTP_ALLOW), the
    size of one node's output (CONDUCTOR_MAX_OUTPUT_MB), the `delay` past which a delay parks
    instead of holding its worker (CONDUCTOR_PARK_DELAY_MS)."""

    files_root: Path = field(default_factory=lambda: Path.cwd() / "files")
    allow_shell: bool = False
    http_allow: tuple[str, ...] = ()
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES
    park_delay_ms: int = 5000
    # Starts child executions for `blueprint` nodes (the worker's; docs/children.md)
    children: ChildRuns | None = None
    # Where nodes that stream put content above `blob_threshold_bytes` (None: they do not).
    blobs: BlobWriter | None = None
    blob_threshold_bytes: int = 256 * 1024


@dataclass(frozen=True)
class NodeContext:
    """What a running node may see: its input ports, the execution's variables, its deadline."""

    execution_id: str
    node_id: str
    inputs: Mapping[str, Any]
    variables: Mapping[str, Any] = field(default_factory=dict)
    attempt: int = 1
    deadline: float = field(default_factory=lambda: time.monotonic() + 30.0)
    data: Any = None  # the main input (`$input`); see workers.run_node.gather_inputs
    node_key: str = ""  # its key in the execution: under its groups and loop items
    environment: NodeEnvironment = field(default_factory=NodeEnvironment)
    finished_ms: Mapping[str, int] = field(default_factory=dict)  # when each port's source ended
    on_progress: Callable[[float, str], None] = field(default=lambda fraction, message: None)
    # Set when the node must stop (its execution was cancelled): long waits should watch it.
    stop: threading.Event = field(default_factory=threading.Event)
    # Set for a container node that ran children (group, parallel, a loop collecting items).
    container: ContainerRun | None = None

    def report_progress(self, fraction: float, message: str = "") -> None:
        """Tell live viewers how far the node is (0.0 to 1.0): a node.progress event."""
        self.on_progress(min(1.0, max(0.0, fraction)), message)

    def get_input(self, name: str, default: Any = None) -> Any:
        """The value on input port `name`, or `default`."""
        return self.inputs.get(name, default)

    def remaining_s(self) -> float:
        """Seconds left before the node's timeout."""
        return max(0.0, self.deadline - time.monotonic())


P = TypeVar("P", bound=NodeParameters)


class Node(ABC, Generic[P]):
    """A node type. Subclasses set `type_name`, `parameters_model` and implement `run`."""

    type_name: ClassVar[str]
    version: ClassVar[str] = "1.0.0"
    description: ClassVar[str] = ""
    parameters_model: ClassVar[type[NodeParameters]] = NodeParameters
    # Parameters that must be written literally: no templates, no input-port overrides (for
    # example a shell command, whose text is split into arguments).
    literal_parameters: ClassVar[frozenset[str]] = frozenset()
    # Where the variable parts of a literal parameter go instead (named in the error).
    variable_parts_hint: ClassVar[str] = "put variable parts in another parameter"
    # Keys Atomiton's own node definition carries for its editor but Conductor does not read:
    # accepted without a warning.
    editor_parameters: ClassVar[frozenset[str]] = frozenset()
    # Whether the node takes large strings as BlobText references (it streams them); other
    # nodes get them as strings.
    streams_blobs: ClassVar[bool] = False
    # Parameters whose templates the node renders itself, with its own grammar (edit-fields'
    # `values`, whose `{{name}}` reads the input's fields as Atomiton's do).
    self_rendered_parameters: ClassVar[frozenset[str]] = frozenset()

    @abstractmethod
    def run(self, params: P, context: NodeContext) -> Mapping[str, Any]:
        """Do the node's work; return a mapping with a `result` key."""

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """The JSON Schema of this type's parameters; each alias is listed as a property too,
        so an outside schema check accepts a Blueprint that uses it."""
        schema = cls.parameters_model.model_json_schema()
        properties = schema.get("properties", {})
        for name, aliases in parameter_aliases(cls.parameters_model).items():
            canonical = properties.get(name)
            for alias in aliases:
                if canonical is not None and alias not in properties:
                    properties[alias] = {**canonical, "description": f"Alias of {name}"}
        return schema

    @classmethod
    def parameter_names(cls) -> frozenset[str]:
        """Every key this type reads from `parameters`: fields and their aliases."""
        return _parameter_names(cls.parameters_model)


def without_shadowed_aliases(data: Any, aliases: Mapping[str, str]) -> Any:
    """Parameters without an alias whose name is also given (`aliases`: alias -> name): an
    input port overrides a parameter by its own name, and then wins over an alias of it."""
    if isinstance(data, dict):
        return {k: v for k, v in data.items() if aliases.get(k) not in data}
    return data


@cache  # a model's fields never change; validation asks once per node
def parameter_aliases(model: type[BaseModel]) -> dict[str, tuple[str, ...]]:
    """Each field's other accepted names (its validation aliases other than itself)."""
    found: dict[str, tuple[str, ...]] = {}
    for name, info in model.model_fields.items():
        alias = info.validation_alias
        choices = alias.choices if isinstance(alias, AliasChoices) else [alias]
        others = tuple(c for c in choices if isinstance(c, str) and c != name)
        if others:
            found[name] = others
    return found


@cache
def _parameter_names(model: type[BaseModel]) -> frozenset[str]:
    return frozenset(model.model_fields).union(*parameter_aliases(model).values())


SETTLED_ERROR = "$error"


def settled_failure(error: Mapping[str, Any]) -> dict[str, Any]:
    """The output of a node whose failure was settled (inside allSettled or a loop item)."""
    return {"result": None, SETTLED_ERROR: dict(error)}


def settled_error(output: Any) -> dict[str, Any] | None:
    """The error of a settled failure, or None for any other output."""
    if isinstance(output, dict) and isinstance(output.get(SETTLED_ERROR), dict):
        return dict(output[SETTLED_ERROR])
    return None


class ExpandingNode(Node[P]):
    """A node that runs its body once per item: `items` says what to run it for, `collect`
    builds the output from the items' outcomes (each a sink output, or a settled failure)."""

    @abstractmethod
    def items(self, params: P, context: NodeContext) -> list[Any]:
        """The items to run the body for."""

    @abstractmethod
    def collect(self, params: P, context: NodeContext, outcomes: list[Any]) -> Mapping[str, Any]:
        """The node's output from every item's outcome, in item order."""

    def lanes(self, params: P) -> int:
        """How many items may run at once."""
        return 1

    def run(self, params: P, context: NodeContext) -> Mapping[str, Any]:
        """Without a body, each item is its own outcome."""
        return self.collect(params, context, self.items(params, context))
