"""The compared shapes: each as a Blueprint of no-op nodes and as the bare Celery canvas."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from celery import Celery, chain, chord
from celery.canvas import Signature

from benchmarks.worker import DONE_TASK, NOOP_TASK
from conductor.model.blueprint import Blueprint
from conductor.model.loader import load_blueprint_text

# edit-fields with nothing to set: about 3 us of work. `delay` with ms 0 costs about 75 us,
# because time.sleep(0) still sleeps for the kernel's timer slack.
NOOP_NODE: dict[str, Any] = {
    "type": "edit-fields",
    "parameters": {"keepOnlySet": True, "values": {}},
}

BareCanvas = Callable[[Celery, str], Signature[Any]]


@dataclass(frozen=True)
class Scenario:
    """One shape, with as many bare tasks as Blueprint nodes."""

    label: str
    nodes: int
    blueprint: Blueprint
    bare_canvas: BareCanvas


def scenarios() -> list[Scenario]:
    """(a) a 10-node chain, (b) a 1->40->1 fan-out/fan-in, (c) a 40-node chain."""
    return [
        Scenario("(a) chain of 10", 10, linear_blueprint(10), lambda a, r: bare_chain(a, r, 10)),
        Scenario("(b) 1->40->1", 42, fan_blueprint(40), lambda a, r: bare_fan(a, r, 40)),
        Scenario("(c) chain of 40", 40, linear_blueprint(40), lambda a, r: bare_chain(a, r, 40)),
    ]


def linear_blueprint(length: int) -> Blueprint:
    """`length` no-op nodes, each wired to the next."""
    ids = [f"n{index}" for index in range(length)]
    edges = [(source, target) for source, target in itertools.pairwise(ids)]
    return _blueprint(f"chain-{length}", ids, edges)


def fan_blueprint(width: int) -> Blueprint:
    """One no-op node, `width` no-op nodes after it, and one no-op node after all of them."""
    middle = [f"w{index}" for index in range(width)]
    edges = [("start", node) for node in middle] + [(node, "end") for node in middle]
    return _blueprint(f"fan-{width}", ["start", *middle, "end"], edges)


def _blueprint(name: str, ids: list[str], edges: list[tuple[str, str]]) -> Blueprint:
    data = {
        "id": name,
        "name": name,
        "nodes": [{"id": node_id, **NOOP_NODE} for node_id in ids],
        "edges": [{"source": source, "target": target} for source, target in edges],
    }
    return load_blueprint_text(json.dumps(data), json_only=True)


def bare_chain(app: Celery, run_id: str, length: int) -> Signature[Any]:
    """`length - 1` no-op tasks, then `bench.done`, as one chain."""
    return chain(*[_noop(app) for _ in range(length - 1)], _done(app, run_id), app=app)


def bare_fan(app: Celery, run_id: str, width: int) -> Signature[Any]:
    """chain(noop, chord(`width` noops, done))."""
    header = [_noop(app) for _ in range(width)]
    return chain(_noop(app), chord(header, _done(app, run_id), app=app), app=app)


def _noop(app: Celery) -> Signature[Any]:
    return app.signature(NOOP_TASK, immutable=True)


def _done(app: Celery, run_id: str) -> Signature[Any]:
    return app.signature(DONE_TASK, args=(run_id,), immutable=True)
