"""A blob store that cannot take a node's output (issue 15): the write fails for real (the
worker runs under a file size limit, as a full disk fails it), the execution ends, and no
partial temporary file is left to keep the store full."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from conductor.embedded import RedisServer, WorkerProcess
from conductor.model.loader import load_blueprint_text
from conductor.model.settings import Settings
from conductor.services import Services
from conductor.waiting import wait_for_result

FILE_SIZE_LIMIT_BYTES = 1024 * 1024
# `python -c` with the worker's arguments: the limit is set, then `conductor worker` runs.
_LAUNCH = f"""
import resource, runpy, sys
resource.setrlimit(resource.RLIMIT_FSIZE, ({FILE_SIZE_LIMIT_BYTES}, {FILE_SIZE_LIMIT_BYTES}))
sys.argv = ["conductor", "worker", *sys.argv[1:]]
runpy.run_module("conductor", run_name="__main__")
"""

BIG = """
id: big-output
name: Big output
variables:
  big: {type: string, defaultValue: ""}
nodes:
  - id: copy
    type: edit-fields
    queue: QUEUE
    parameters: {values: {copy: "{{$vars.big}}"}, keepOnlySet: true}
"""


class LimitedWorker(WorkerProcess):
    """A worker whose processes may not write a file over FILE_SIZE_LIMIT_BYTES."""

    entry_point: ClassVar[tuple[str, ...]] = ("-c", _LAUNCH)


@pytest.fixture
def limited(redis_server: RedisServer, tmp_path: Path) -> Iterator[tuple[Settings, str]]:
    """Settings on a private data dir, and a queue only the limited worker consumes."""
    queue = f"limited-{uuid.uuid4().hex[:8]}"
    env = {"CONDUCTOR_DATA_DIR": str(tmp_path)}
    worker = LimitedWorker(redis_server.url, concurrency=1, queues=[queue], env=env).start()
    yield Settings.from_env(env).with_redis(redis_server.url), queue
    worker.kill()


def test_a_blob_write_that_fails_ends_the_node_and_leaves_no_temporary_file(
    limited: tuple[Settings, str],
) -> None:
    settings, queue = limited
    services = Services.from_settings(settings)
    try:
        blueprint = load_blueprint_text(BIG.replace("QUEUE", queue))
        big = "x" * (2 * FILE_SIZE_LIMIT_BYTES)  # over the blob threshold and the file limit
        plan = services.dispatcher.submit(blueprint, {"big": big})
        events = services.backend.event_source()
        result = wait_for_result(events, services.stores, plan.execution_id, timeout_s=90)
    finally:
        services.close()
    assert result["status"] == "failed", result
    assert "cannot store a blob" in result["error"]["message"], result
    blobs = settings.blob_dir
    assert list(blobs.rglob(".tmp-*")) == [], "a partial blob was left behind"
