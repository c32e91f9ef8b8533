"""Replay: run a finished execution again from what history recorded (its Blueprint as
submitted and its inputs), as a new execution linked to the original by `replay_of`.

With `from_node`, the nodes that do not depend on it keep their recorded outputs (they end at
once as cached, event node.cached) and only `from_node`, what depends on it, and whatever has
no recorded success re-run: Hatchet's and Airflow's "re-run from this step".
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from conductor.dispatch import Dispatcher
from conductor.model.admission import DEFAULT_PRIORITY, Admission, InvalidAdmission
from conductor.model.loader import blueprint_from_data, ensure_plain_inputs
from conductor.model.plan import KEY_SEPARATOR, ExecutionPlan
from conductor.model.problems import InvalidBlueprint
from storage.events import Event, EventType
from storage.history import ExecutionRecord, HistoryStore
from storage.state import TERMINAL, NodeStatus


class ReplayError(Exception):
    """A replay that cannot be made."""


class ExecutionUnknown(ReplayError):
    """History holds no execution with this id."""


class NotFinal(ReplayError):
    """The execution has not ended (as far as history knows)."""


class NotReplayable(ReplayError):
    """History holds the execution but not its Blueprint."""


class UnknownNode(ReplayError):
    """`from_node` names no node of the execution's plan."""


@dataclass(frozen=True)
class Replayer:
    """Makes replays from the history store, through the dispatcher."""

    history: HistoryStore
    dispatcher: Dispatcher

    def replay(
        self,
        execution_id: str,
        *,
        from_node: str | None = None,
        inputs: Mapping[str, Any] | None = None,
        new_id: str | None = None,
    ) -> ExecutionPlan:
        """Submit the replay (raising a ReplayError, or InvalidBlueprint for `inputs`, before
        anything is stored); `inputs` replace the recorded inputs of the same names."""
        record = self._final(execution_id)
        blueprint = self._blueprint(record)
        if inputs is not None:
            ensure_plain_inputs(inputs)
        merged = {**record.inputs, **(inputs or {})}
        try:
            plan = self.dispatcher.prepare(
                blueprint,
                merged,
                new_id or str(uuid.uuid4()),
                admission=recorded_admission(self.history.events(execution_id, limit=1)),
                replay_of=execution_id,
            )
        except InvalidBlueprint as exc:  # a node type or rule of the recorded one is gone
            problems = "; ".join(str(problem) for problem in exc.problems[:5])
            raise NotReplayable(
                f"the recorded Blueprint of execution {execution_id!r} is not valid here: "
                f"{problems}"
            ) from None
        reused: dict[str, str] = {}
        if from_node is not None:
            if from_node not in plan.nodes:
                raise UnknownNode(
                    f"from_node: execution {execution_id!r} has no node {from_node!r} "
                    f"(its nodes: {', '.join(sorted(plan.nodes)[:20])})"
                )
            succeeded = {
                run.node_id
                for run in self.history.node_runs(execution_id)
                if run.status is NodeStatus.SUCCEEDED
            }
            recorded = self.history.node_outputs(execution_id)
            keep = {key: text for key, text in recorded.items() if key in succeeded}
            reused = reusable(plan, from_node, keep)
        self.dispatcher.start(plan, reused)
        return plan

    def _final(self, execution_id: str) -> ExecutionRecord:
        record = self.history.execution(execution_id)
        if record is None or not record.blueprint_id:
            raise ExecutionUnknown(f"no execution {execution_id!r} in the history store")
        if record.status not in TERMINAL:
            raise NotFinal(
                f"execution {execution_id!r} is {record.status.value} in the history store: "
                "only a finished one (succeeded, failed or cancelled) can be replayed"
            )
        return record

    def _blueprint(self, record: ExecutionRecord) -> Any:
        text = self.history.blueprint(record.blueprint_hash) if record.blueprint_hash else None
        if text is None:
            raise NotReplayable(
                f"the history store does not hold the Blueprint of execution {record.id!r} "
                "(recorded before replay existed, or the recorder saw it too late)"
            )
        return blueprint_from_data(json.loads(text))


def recorded_admission(events: Sequence[Event]) -> Admission:
    """The priority and concurrency key the original was submitted with (its
    execution.queued), so a replay waits in the same line; the defaults when not recorded."""
    queued = next((e for e in events if e.type == EventType.EXECUTION_QUEUED), None)
    data = queued.data if queued is not None else {}
    try:
        return Admission(
            priority=data.get("priority", DEFAULT_PRIORITY),
            concurrency_key=data.get("concurrency_key"),
        )
    except InvalidAdmission:  # recorded by another version with other rules
        return Admission()


def reusable(plan: ExecutionPlan, from_node: str, recorded: Mapping[str, str]) -> dict[str, str]:
    """The nodes whose recorded output the replay keeps: every node with one, except
    `from_node` (with a container's children), what depends on it, and what depends on any
    node that runs again."""
    rerun = {
        key for key in plan.nodes if key == from_node or key.startswith(from_node + KEY_SEPARATOR)
    }
    rerun |= {key for key in plan.nodes if key not in recorded}
    dependencies = plan.dependencies()
    changed = True
    while changed:  # a node runs again when anything it waits for does
        changed = False
        for key, upstream in dependencies.items():
            if key not in rerun and any(source in rerun for source in upstream):
                rerun.add(key)
                changed = True
    return {key: recorded[key] for key in plan.nodes if key not in rerun}
