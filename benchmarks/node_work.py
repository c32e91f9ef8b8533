"""Conductor's own work per node, without Celery: `run_node` called in this process."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from benchmarks.redis_stats import counted_sends
from conductor.compiler import compile_plan
from conductor.model.blueprint import Blueprint
from conductor.model.graph import levels
from nodes.registry import NodeRegistry
from workers.run_node import Outcome, run_node
from workers.stores import Stores


@dataclass(frozen=True)
class NodeWork:
    """Seconds and Redis requests of each `run_node` call: inner nodes, and last nodes."""

    inner_s: list[float]
    last_s: list[float]
    inner_sends: int
    last_sends: int


def measure_node_work(
    blueprint: Blueprint, stores: Stores, registry: NodeRegistry, executions: int
) -> NodeWork:
    """Create `executions` executions and run their nodes one by one, in dependency order."""
    work = NodeWork([], [], 0, 0)
    for _ in range(executions):
        work = _add(work, _one_execution(blueprint, stores, registry))
    return work


def _one_execution(blueprint: Blueprint, stores: Stores, registry: NodeRegistry) -> NodeWork:
    plan = compile_plan(blueprint, str(uuid.uuid4()), {})
    stores.state.create(plan)
    order = [key for level in levels(plan.dependencies()) for key in level]
    inner: list[float] = []
    with counted_sends() as inner_sends:
        for key in order[:-1]:
            inner.append(_timed_run(plan.execution_id, key, stores, registry))
    with counted_sends() as last_sends:
        last = _timed_run(plan.execution_id, order[-1], stores, registry)
    return NodeWork(inner, [last], inner_sends.sends, last_sends.sends)


def _timed_run(execution_id: str, key: str, stores: Stores, registry: NodeRegistry) -> float:
    start = time.perf_counter()
    run = run_node(execution_id, key, stores, registry, worker="bench")
    elapsed = time.perf_counter() - start
    if run.outcome is not Outcome.SUCCEEDED:
        raise RuntimeError(f"node {key} ended {run.outcome.value}: {run.error}")
    return elapsed


def _add(total: NodeWork, more: NodeWork) -> NodeWork:
    return NodeWork(
        total.inner_s + more.inner_s,
        total.last_s + more.last_s,
        total.inner_sends + more.inner_sends,
        total.last_sends + more.last_sends,
    )
