"""A node run in a limited child process (workers/limited_run.py), without Celery: its output
and progress come back, and each way it can end becomes the right NodeError."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from conductor.model.blob_text import BlobText
from conductor.model.loader import load_blueprint_text
from conductor.model.problems import InvalidBlueprint
from conductor.model.resources import NodeResources
from nodes.base import Node, NodeContext, NodeParameters
from nodes.errors import NodeError
from workers.invocation import Invocation
from workers.limited_run import LimitedRun, address_space_bytes, blob_reference

Body = Callable[[NodeContext], Mapping[str, Any]]


class _Custom(Node[NodeParameters]):
    type_name = "custom"

    def __init__(self, body: Body) -> None:
        self.body = body

    def run(self, params: NodeParameters, context: NodeContext) -> Mapping[str, Any]:
        return self.body(context)


def limited(body: Body, deadline_s: float = 20.0, **limits: Any) -> LimitedRun:
    context = NodeContext(
        execution_id="e", node_id="n", inputs={}, deadline=time.monotonic() + deadline_s
    )
    return LimitedRun(Invocation(_Custom(body), NodeParameters(), context), NodeResources(**limits))


def failure(run: LimitedRun) -> NodeError:
    with pytest.raises(NodeError) as caught:
        run.run()
    return caught.value


def test_the_output_and_progress_come_back_with_the_childs_usage() -> None:
    seen: list[tuple[float, str]] = []

    def body(context: NodeContext) -> Mapping[str, Any]:
        context.report_progress(0.5, "half")
        return {"result": os.getpid()}

    run = limited(body, memoryMb=64)
    run.call = Invocation(
        run.call.node,
        run.call.params,
        NodeContext(
            execution_id="e",
            node_id="n",
            inputs={},
            on_progress=lambda f, m: seen.append((f, m)),
        ),
    )
    output = run.run()
    assert output["result"] != os.getpid()  # it ran in another process
    assert seen == [(0.5, "half")]
    assert run.usage is not None and run.usage.peak_rss_bytes > 0


def test_memory_past_the_limit_is_memory_limit_exceeded() -> None:
    error = failure(limited(lambda context: {"result": len(bytearray(200 << 20))}, memoryMb=32))
    assert error.code == "MEMORY_LIMIT_EXCEEDED" and not error.retryable
    assert "32 MB" in str(error) and "resources.memoryMb" in str(error)


def spin(context: NodeContext) -> Mapping[str, Any]:
    while True:
        pass


def test_cpu_past_the_limit_is_a_timeout_naming_it() -> None:
    error = failure(limited(spin, cpuSeconds=1))
    assert error.code == "TIMEOUT" and not error.retryable
    assert "CPU time limit of 1 s" in str(error)


def sleep(context: NodeContext) -> Mapping[str, Any]:
    time.sleep(30)
    return {"result": None}


def test_the_nodes_deadline_kills_the_child() -> None:
    started = time.monotonic()
    error = failure(limited(sleep, deadline_s=0.3, cpuShare=0.5))
    assert error.code == "TIMEOUT" and time.monotonic() - started < 5


def test_a_stop_kills_the_child() -> None:
    run = limited(sleep, cpuSeconds=10)
    threading.Timer(0.2, run.call.context.stop.set).start()
    assert failure(run).code == "CANCELLED"


def crash(context: NodeContext) -> Mapping[str, Any]:
    os.kill(os.getpid(), signal.SIGTERM)  # (SIGSEGV would print faulthandler's dump)
    return {"result": None}


def test_a_crash_under_a_memory_limit_says_memory_and_otherwise_a_crash() -> None:
    error = failure(limited(crash, memoryMb=64))
    assert error.code == "MEMORY_LIMIT_EXCEEDED" and "killed by SIGTERM" in str(error)
    error = failure(limited(crash, cpuShare=0.25))
    assert error.code == "EXECUTION_FAILED" and "killed by SIGTERM" in str(error)


def test_a_nodes_own_error_keeps_its_code_and_a_non_json_output_is_refused() -> None:
    def refuse(context: NodeContext) -> Mapping[str, Any]:
        raise NodeError("nope", code="INVALID_PARAMETERS", retryable=False)

    error = failure(limited(refuse, memoryMb=64))
    assert (error.code, str(error), error.retryable) == ("INVALID_PARAMETERS", "nope", False)
    error = failure(limited(lambda context: {"result": {1, 2}}, memoryMb=64))
    assert error.code == "SERIALIZATION_FAILED"


def test_limits_validate_naming_the_field() -> None:
    text = "id: r\nname: r\nnodes:\n  - id: a\n    type: delay\n    resources: {}\n"
    with pytest.raises(InvalidBlueprint) as caught:
        load_blueprint_text(text)
    assert "nodes[0].resources" in str(caught.value)
    bad = text.replace("{}", "{memoryMb: 0, cpuShare: 2, disk: 1}")
    with pytest.raises(InvalidBlueprint) as caught:
        load_blueprint_text(bad)
    for field in ("memoryMb", "cpuShare", "disk"):
        assert f"nodes[0].resources.{field}" in str(caught.value)


def test_a_cpu_share_is_a_nice_value() -> None:
    assert NodeResources(cpuShare=1).niceness() == 0
    assert NodeResources(cpuShare=0.5).niceness() == 3  # 1.25 ** 3 is about 2
    assert NodeResources(cpuShare=0.0001).niceness() == 19
    assert NodeResources(memoryMb=1).niceness() == 0
    assert address_space_bytes() > 0


class _Store:
    def get(self, ref: str) -> bytes:
        return b"big text"

    def read_chunks(self, ref: str) -> Iterator[bytes]:
        yield b"big text"


def test_a_blob_text_in_the_output_travels_as_its_stored_reference() -> None:
    blob = BlobText("sha256:ab", 8, _Store())
    output = limited(lambda context: {"result": blob}, memoryMb=64).run()
    assert output == {"result": blob.reference()}
    assert blob_reference(blob) == blob.reference()
    with pytest.raises(TypeError):
        blob_reference(object())
