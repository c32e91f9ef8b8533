"""Large items (issue 16): a 200 MB file read and written back through two nodes streams
through the blob store (a folder, or S3 on moto's server) without any worker process holding
it, the store keeps one copy, and blobs are collected once nothing refers to them (after the
executions expire from Redis and `history prune` removes them from the history)."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from conductor.cli.main import main
from conductor.recorder import Recorder
from tests.e2e.blob_stack import MIB, BlobStack, blob_stack, peak_rss_bytes

ITEM_BYTES = 200 * MIB
S3_ITEM_BYTES = 64 * MIB  # moto's server takes about 10 s per 100 MiB: CI time
GRACE_S = 2

PASS_THROUGH = """
id: pass-through
name: Read a file and write it back
nodes:
  - {id: read, type: file-system, parameters: {operation: read, path: PATH}}
  - {id: write, type: file-system, parameters: {operation: write, path: COPY, overwrite: true}}
edges:
  - {source: read, target: write}
"""

READ = """
id: read
name: Read a file
nodes:
  - {id: read, type: file-system, parameters: {operation: read, path: PATH}}
"""


@pytest.fixture(scope="module", params=["file", "s3"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BlobStack]:
    """The private stack; its worker collects blobs every second (grace GRACE_S)."""
    tmp_path = tmp_path_factory.mktemp(f"blobs-{request.param}")
    if shutil.disk_usage(tmp_path).free < 4 * ITEM_BYTES:
        pytest.skip(f"needs {4 * ITEM_BYTES // MIB} MiB of free disk")
    gc = {"CONDUCTOR_BLOB_GC_EVERY_S": "1", "CONDUCTOR_BLOB_GC_GRACE_S": str(GRACE_S)}
    with blob_stack(request.param, tmp_path, request, **gc) as built:
        built.files.mkdir(parents=True, exist_ok=True)
        yield built


def _write_item(path: Path, size: int) -> str:
    """A text file of `size` bytes (distinct per path); its SHA-256."""
    digest = hashlib.sha256()
    block = (path.name * (MIB // len(path.name) + 1)).encode()[: MIB - 16]
    with path.open("wb") as handle:
        for number in range(size // MIB):
            chunk = f"{number:015d}\n".encode() + block
            handle.write(chunk)
            digest.update(chunk)
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(MIB):
            digest.update(chunk)
    return digest.hexdigest()


def _pass_through(stack: BlobStack, name: str) -> dict[str, object]:
    blueprint = PASS_THROUGH.replace("PATH", name).replace("COPY", f"copy-{name}")
    return stack.run(blueprint)


def test_a_200_mb_file_streams_through_two_nodes(stack: BlobStack) -> None:
    size = ITEM_BYTES if stack.settings.blob_url is None else S3_ITEM_BYTES
    digest = _write_item(stack.files / "big.txt", size)
    time.sleep(1)  # the worker settles after start-up
    idle = {p.pid: p.memory_info().rss for p in stack.processes()}
    result = _pass_through(stack, "big.txt")
    assert result["status"] == "succeeded", result["error"]
    assert _sha256(stack.files / "copy-big.txt") == digest
    sizes = sorted(info.size for info in stack.services.stores.blobs.scan())
    assert sizes.count(size) == 1, sizes  # result and content: one blob
    assert sum(sizes) < size + MIB, sizes  # and no other copy
    report = []
    for process in stack.processes():
        peak, before = peak_rss_bytes(process), idle.get(process.pid, 0)
        report.append(f"pid {process.pid}: idle {before / MIB:.0f} MiB, peak {peak / MIB:.0f} MiB")
        assert peak <= size * 1.2 + before, report
    print(
        f"{size // MIB} MiB pass-through ({stack.settings.blob_store_url()}): " + "; ".join(report)
    )


def _gc(stack: BlobStack, *args: str) -> dict[str, int]:
    report: dict[str, int] = json.loads(_gc_text(stack, "--json", *args))
    return report


def _gc_text(stack: BlobStack, *args: str) -> str:
    """`conductor blobs gc` (again while the worker's own pass holds the lock)."""
    deadline = time.monotonic() + 30
    while True:
        outcome = CliRunner().invoke(main, ["blobs", "gc", *args], env=stack.env)
        busy = "another blob collection is running" in outcome.output
        if not busy or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert outcome.exit_code == 0, outcome.output
    return outcome.output


def _until_store_holds(stack: BlobStack, size: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while stack.store_bytes() != size:
        assert time.monotonic() < deadline, f"the store holds {stack.store_bytes()}, not {size}"
        time.sleep(0.5)


def test_blobs_are_collected_after_expiry_and_history_prune(stack: BlobStack) -> None:
    history = stack.services.history
    backend = stack.services.backend
    recorder = Recorder(
        backend.client, history, consumer="blob-test", outputs=backend.node_outputs()
    )

    def settle_history() -> None:
        recorder.drain()  # events leave the stream for the history
        time.sleep(2.5)  # finished executions expire from Redis (TTL 2 s)

    settle_history()
    history.prune(0)
    _until_store_holds(stack, 0)  # nothing refers to the earlier test's blob any more
    baseline = stack.store_bytes()
    for number in range(3):
        _write_item(stack.files / f"item-{number}.txt", 3 * MIB)
    for number in range(2):  # the read's output is the result
        read = READ.replace("PATH", f"item-{number}.txt")
        assert stack.run(read)["status"] == "succeeded"
    # here the read is a node in between: the history keeps it among the node outputs
    assert _pass_through(stack, "item-2.txt")["status"] == "succeeded"
    grown = stack.store_bytes()
    assert grown == baseline + 9 * MIB
    settle_history()
    time.sleep(GRACE_S + 1)  # the worker's periodic passes run meanwhile
    kept = _gc(stack)  # expired from Redis, but the history still shows all three
    assert (kept["deleted"], kept["referenced"], kept["bytes"]) == (0, 3, baseline + 9 * MIB)
    dry = _gc(stack, "--dry-run", "--grace-s", "0")
    assert dry["dry_run"] and dry["deleted"] == 0
    history.prune(0)
    _until_store_holds(stack, baseline)
    assert _gc(stack)["bytes"] == baseline
    assert "would delete 0 blobs (0 B)" in _gc_text(stack, "--dry-run")
    lock = stack.services.stores.state
    token = lock.acquire_lock("blob-gc", 60_000)
    while token is None:  # the worker's pass holds it for a moment
        time.sleep(0.1)
        token = lock.acquire_lock("blob-gc", 60_000)
    busy = CliRunner().invoke(main, ["blobs", "gc"], env=stack.env)
    lock.release_lock("blob-gc", token)
    assert busy.exit_code == 1 and "another blob collection is running" in busy.output
    print(
        f"blob store ({stack.settings.blob_store_url()}): {baseline} bytes before, {grown} "
        f"after three 3 MiB reads, {kept['bytes']} once Redis forgot them, "
        f"{stack.store_bytes()} after history prune"
    )
