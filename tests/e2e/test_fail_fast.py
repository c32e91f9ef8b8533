"""Fail-fast drains (issue 15 item 2): when one node's failure ends the execution, a sibling
inside its own retries logs nothing after the terminal event, every node ends final in Redis
and in history (a group node included), and `retry` re-runs the failed and not-run nodes.
A private Redis, a recorder and a real worker; the sibling's requests go to a closed port."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from conductor.control import ControlOutcome
from storage.events import TERMINAL_EVENTS
from storage.state import FINISHED_NODE
from tests.e2e.fault_stack import Stack, assert_sound, private_stack, queued, wait_until

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with private_stack(tmp_path_factory.mktemp("fail-fast"), "fail-fast") as stack:
        yield stack


def closed_port() -> int:
    """A local port nothing listens on (connections are refused: a retryable failure)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


BLUEPRINT = """
id: fail-fast
name: Fail fast
nodes:
  - {id: wait, type: delay, parameters: {ms: 1500}}
  - {id: boom, type: transform, parameters: {transformFunction: "x => { throw new Error('no') }"}}
  - id: flaky
    type: http-request
    parameters: {url: "URL", maxRetries: 0, retries: 6}
  - {id: after, type: delay, parameters: {ms: 0}}
  - id: wrap
    type: group
    nodes: [{id: inner, type: delay, parameters: {ms: 0}}]
edges:
  - {source: wait, target: boom}
  - {source: flaky, target: after}
  - {source: after, target: wrap}
"""


def test_a_failure_drains_a_sibling_in_its_retries_and_retry_reruns_the_rest(
    stack: Stack,
) -> None:
    url = f"http://127.0.0.1:{closed_port()}/down"
    execution_id = stack.submit(BLUEPRINT.replace("URL", url))
    stack.wait_event(execution_id, "node.retrying", "flaky")
    failed = stack.wait_final(execution_id)
    assert (failed["status"], failed["error"]["nodeId"]) == ("failed", "boom")
    terminal = stack.wait_event(execution_id, "execution.failed")
    assert set(terminal.data["cancelled"]) >= {"flaky", "after", "wrap"}

    # the sibling's next delivery (its retry countdown) comes and goes without a word
    wait_until(
        lambda: queued(stack.client, "conductor") == 0 and not _scheduled(stack),
        "the sibling's retry to be delivered",
    )
    events = stack.events(execution_id)
    assert events[-1].seq == terminal.seq, [e.type.value for e in events[terminal.seq :]]
    nodes = stack.dispatcher().stores.state.snapshot(execution_id, []).nodes
    unfinished = {k: r.status.value for k, r in nodes.items() if r.status not in FINISHED_NODE}
    assert unfinished == {}
    assert nodes["wrap"].status.value == "cancelled"
    assert_sound(stack, [execution_id])  # history equals Redis, node by node

    before = {k: r.attempts for k, r in nodes.items()}
    assert stack.control().retry(execution_id) is ControlOutcome.DONE
    again = stack.wait_final(execution_id)
    assert (again["status"], again["error"]["nodeId"]) == ("failed", "boom")
    rerun = {step["nodeId"] for step in again["trace"] if step["attempts"] > before[step["nodeId"]]}
    assert "boom" in rerun  # the failed node ran again
    # The one the failure cut short was sent again (resumed's nodes, below); whether it started
    # before boom failed once more depends on the worker's timing, but it ends final either way.
    states = {step["nodeId"]: step["status"] for step in again["trace"]}
    assert "flaky" in rerun or states["flaky"] == "cancelled", states
    resumed = [e for e in stack.events(execution_id) if e.type.value == "execution.resumed"]
    assert {"boom", "flaky", "after", "wrap"} <= set(resumed[-1].data["nodes"])
    ends = [e for e in stack.events(execution_id) if e.type in TERMINAL_EVENTS]
    assert len(ends) == 2 and stack.events(execution_id)[-1].seq == ends[-1].seq


def _scheduled(stack: Stack) -> bool:
    """Whether a retry with a countdown is still waiting in the worker (an unacked message)."""
    return bool(stack.client.hlen("unacked"))
