"""Redis behind Sentinels: the primary is killed mid-run, a replica takes over, and every
accepted execution still ends final, each node succeeds once, and history equals the events."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.fault_stack import assert_sound, chain, delay
from tests.e2e.sentinel_stack import SentinelStack, sentinel_stack

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[SentinelStack]:
    """A primary, a replica, three Sentinels, a recorder and a worker."""
    with sentinel_stack(tmp_path) as found:
        yield found


def test_a_primary_killed_mid_run_fails_over_and_loses_nothing(stack: SentinelStack) -> None:
    group = stack.sentinels
    blueprint = chain(*[(f"n{i}", delay(300)) for i in range(5)])
    ids = [stack.submit(blueprint) for _ in range(6)]
    stack.wait_event(ids[0], "node.succeeded", "n0")
    killed = time.time()
    group.primary.kill()
    promoted = group.wait_promoted()
    more = [stack.submit(blueprint) for _ in range(2)]  # accepted on the new primary
    ids += more
    assert_sound(stack, ids, timeout_s=60)
    finished = time.time()
    succeeded_after = [
        event.ts
        for execution_id in ids
        for event in stack.events(execution_id)
        if event.type == "node.succeeded" and event.ts > killed
    ]
    results = [stack.wait_final(execution_id) for execution_id in ids]
    assert [r["status"] for r in results] == ["succeeded"] * len(ids), results
    print(
        f"\nfailover timeline: primary killed -> new primary {promoted - killed:.2f} s -> "
        f"first node after {min(succeeded_after) - killed:.2f} s -> "
        f"all {len(ids)} final {finished - killed:.2f} s"
    )
