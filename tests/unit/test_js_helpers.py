"""JavaScript helper processes (nodes/js_process.py) do not outlive the process that started
them: a pool child that exits because its node did not stop when cancelled, or a limited
node's child killed at a cancel, takes its busy helper with it."""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

from nodes.js_process import _Helper


def _busy(request: dict[str, Any]) -> str:
    time.sleep(60)
    return ""


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_busy_helper_dies_with_the_process_that_started_it() -> None:
    reader, writer = os.pipe()
    middle = os.fork()
    if middle == 0:  # pragma: no cover - the process that starts the helper
        try:
            os.close(reader)
            helper = _Helper.start(_busy)
            helper.send(json.dumps({"request": {}, "limit_s": 60}).encode())
            os.write(writer, str(helper.pid).encode())
            time.sleep(60)
        finally:
            os._exit(0)
    os.close(writer)
    helper_pid = int(os.read(reader, 32))
    os.close(reader)
    os.kill(middle, signal.SIGKILL)
    os.waitpid(middle, 0)
    deadline = time.monotonic() + 5
    while _running(helper_pid):
        if time.monotonic() > deadline:
            os.kill(helper_pid, signal.SIGKILL)
            raise AssertionError("the helper outlived the process that started it")
        time.sleep(0.05)
