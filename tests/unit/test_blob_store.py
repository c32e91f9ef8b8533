"""The file system blob store writes atomically and leaves nothing behind when a write fails."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from storage.blobs import FilesystemBlobStore

# Run in a child process: the file size limit (RLIMIT_FSIZE) makes the write fail for real
# with EFBIG (SIGXFSZ ignored), as a full disk fails it with ENOSPC.
_FAILING_WRITE = """
import resource, signal, sys
from pathlib import Path
from storage.blobs import BlobWriteFailed, FilesystemBlobStore
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))
try:
    FilesystemBlobStore(Path(sys.argv[1])).put(b"x" * (1024 * 1024))
except BlobWriteFailed as exc:
    print("failed:", exc)
    sys.exit(0)
sys.exit("the write did not fail")
"""


def test_a_failed_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _FAILING_WRITE, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "cannot store a blob" in done.stdout
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_a_blob_is_stored_once_under_its_digest(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)
    ref = store.put(b"payload")
    assert store.put(b"payload") == ref
    assert store.get(ref) == b"payload"
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [ref.removeprefix("sha256:")]
