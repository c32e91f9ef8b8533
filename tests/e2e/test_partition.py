"""A network partition between a worker and Redis, made with a Linux network namespace.

The partitioned worker runs in its own namespace, reaching Redis over a veth pair; taking the
host end down cuts it off mid-node without closing its connections (a partition, not a crash).
Another worker takes the node over once the lease lapses; after the partition heals, the cut-off
attempt is fenced off (its heartbeat says it lost its node; the test waits for its task to end).
That a stale attempt which does try to store is refused is in test_guarantees.py.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conductor.embedded import RedisServer
from tests.ci import in_ci
from tests.e2e.fault_stack import Stack, assert_sound, chain, delay, wait_until

pytestmark = [pytest.mark.serial, pytest.mark.timeout(180)]

HOST_IP, NS_IP = "10.231.0.1", "10.231.0.2"
# Celery's INFO line when the worker's node task returns or raises
TASK_END = re.compile(r"Task conductor\.node\[[^\]]+\] (?:succeeded|raised|failed|retry).*")


def _can_partition() -> str | None:
    if os.geteuid() != 0:
        return "needs root for network namespaces"
    if shutil.which("ip") is None:
        return "needs iproute2 (`ip`)"
    return None


@pytest.fixture
def namespace() -> Iterator[str]:
    """A network namespace joined to the host by a veth pair (host end: `vh-<pid>`)."""
    reason = _can_partition()
    if reason is not None:
        if in_ci():
            pytest.fail(f"the partition test cannot run in CI: {reason}")
        pytest.skip(reason)
    name, host_end, ns_end = f"cpart{os.getpid()}", f"vh{os.getpid()}", f"vn{os.getpid()}"
    commands = [
        ["ip", "netns", "add", name],
        ["ip", "link", "add", host_end, "type", "veth", "peer", "name", ns_end],
        ["ip", "link", "set", ns_end, "netns", name],
        ["ip", "addr", "add", f"{HOST_IP}/30", "dev", host_end],
        ["ip", "link", "set", host_end, "up"],
        ["ip", "-n", name, "addr", "add", f"{NS_IP}/30", "dev", ns_end],
        ["ip", "-n", name, "link", "set", ns_end, "up"],
        ["ip", "-n", name, "link", "set", "lo", "up"],
    ]
    try:
        for command in commands:
            subprocess.run(command, check=True, capture_output=True)
        yield name
    finally:
        subprocess.run(["ip", "link", "del", host_end], check=False, capture_output=True)
        subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


def link(host_end: str, state: str) -> None:
    subprocess.run(["ip", "link", "set", host_end, state], check=True)


def test_a_worker_cut_off_from_redis_is_fenced_off_and_another_takes_over(
    namespace: str, tmp_path: Path
) -> None:
    server = RedisServer(tmp_path / "redis", appendonly=True, bind=("127.0.0.1", HOST_IP)).start()
    (tmp_path / "data").mkdir()
    stack = Stack(server, tmp_path / "data", f"sqlite:///{tmp_path / 'history.sqlite3'}")
    # a private server on a test-only link: let the namespace's worker in without a password
    stack.client.config_set("protected-mode", "no")
    log_path = tmp_path / "cut-off.log"
    log = log_path.open("ab")
    env = {**os.environ, **stack.env}
    env["CONDUCTOR_REDIS_URL"] = f"redis://{HOST_IP}:{server.port}/0"
    cut_off = subprocess.Popen(
        ["ip", "netns", "exec", namespace, sys.executable, "-m", "conductor", "worker",
         "-c", "1", "-n", "cut-off@%h", "--loglevel", "INFO"],
        env=env, stdout=log, stderr=log, start_new_session=True,
    )  # fmt: skip
    host_end = f"vh{os.getpid()}"
    try:
        stack.start_recorder()
        execution_id = stack.submit(chain(("a", delay(4000)), ("b", delay(0))))
        started = stack.wait_event(execution_id, "node.started", "a", timeout_s=60)
        assert started.data["worker"].startswith("cut-off@")
        stack.start_worker("healthy", concurrency=1)
        link(host_end, "down")  # the partition: packets are dropped, connections stay open
        partitioned_at = time.monotonic()
        result = stack.wait_final(execution_id, timeout_s=60)
        assert result["status"] == "succeeded", result["error"]
        trace = {step["nodeId"]: step for step in result["trace"]}
        assert trace["a"]["attempts"] == 2 and trace["a"]["worker"].startswith("healthy@")
        taken_over_s = time.monotonic() - partitioned_at
        # heal only after the lease has lapsed twice over, as a long partition would
        time.sleep(max(0.0, 2 * stack.settings.lease_s - taken_over_s))
        link(host_end, "up")
        # the cut-off attempt learns it lost its node, or tries to store and is refused
        ended = wait_until(lambda: TASK_END.search(log_path.read_text()), "the cut-off task's end")
        print(f"the cut-off attempt: {ended.group(0)}")
        assert_sound(stack, [execution_id])
        successes = [
            e for e in stack.events(execution_id) if e.type == "node.succeeded" and e.node_id == "a"
        ]
        assert len(successes) == 1
    finally:
        link(host_end, "up")
        os.killpg(cut_off.pid, 9)
        cut_off.wait()
        log.close()
        stack.stop_all()
        server.stop()
