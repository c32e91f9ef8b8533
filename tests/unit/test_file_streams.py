"""`file-system` read and write of files above the blob threshold, streamed through the blob
store: the same string as a plain read gives, for every encoding, and the same file back."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from conductor.model.blob_text import BlobText
from nodes.base import NodeContext, NodeEnvironment
from nodes.blob_streams import CHUNK_BYTES
from nodes.errors import NodeError
from nodes.file_system import FileSystemNode
from nodes.file_system_parameters import FileSystemParameters
from storage.memory_blobs import MemoryBlobStore

THRESHOLD = 1024
ENCODINGS = ["utf8", "ascii", "binary", "hex", "base64"]


def run(root: Path, blobs: MemoryBlobStore | None, data: Any = None, **params: Any) -> Any:
    environment = NodeEnvironment(files_root=root, blobs=blobs, blob_threshold_bytes=THRESHOLD)
    context = NodeContext("exec-1", "files", {"input": data}, data=data, environment=environment)
    return FileSystemNode().run(FileSystemParameters.model_validate(params), context)


def _content(encoding: str) -> bytes:
    if encoding in ("utf8",):
        return ("line é ✓ " * 400_000).encode()  # multi-byte characters across chunk edges
    if encoding == "ascii":
        return b"plain text\n" * 100_000
    return os.urandom(2 * CHUNK_BYTES + 7)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_a_large_file_is_read_into_one_blob_and_written_back(tmp_path: Path, encoding: str) -> None:
    raw = _content(encoding)
    (tmp_path / "in.dat").write_bytes(raw)
    blobs = MemoryBlobStore()
    read = run(tmp_path, blobs, path="in.dat", encoding=encoding)
    assert isinstance(read["content"], BlobText)
    assert read["result"] is read["content"]
    assert len(blobs.blobs) == 1
    plain = run(tmp_path, None, path="in.dat", encoding=encoding)["content"]
    assert read["content"].text() == plain  # as a read without a blob store gives
    written = run(
        tmp_path, blobs, read["content"], operation="write", path="out.dat", encoding=encoding
    )
    assert (tmp_path / "out.dat").read_bytes() == raw
    assert written["size"] == len(raw)


def test_a_small_file_stays_a_string(tmp_path: Path) -> None:
    (tmp_path / "small.txt").write_text("small")
    assert run(tmp_path, MemoryBlobStore(), path="small.txt")["content"] == "small"


@pytest.mark.parametrize(
    ("encoding", "raw", "at"),
    [("utf8", b"a" * 5000 + b"\xff" + b"b" * 10, 5000), ("ascii", b"a" * 3000 + b"\x80", 3000)],
)
def test_a_large_file_that_is_not_text_names_the_byte(
    tmp_path: Path, encoding: str, raw: bytes, at: int
) -> None:
    (tmp_path / "bad.txt").write_bytes(raw)
    with pytest.raises(NodeError, match=f"bad.txt is not {encoding} text .* at byte {at}"):
        run(tmp_path, MemoryBlobStore(), path="bad.txt", encoding=encoding)


def test_a_truncated_utf8_sequence_at_the_end_is_refused(tmp_path: Path) -> None:
    (tmp_path / "cut.txt").write_bytes(b"a" * 5000 + "é".encode()[:1])
    with pytest.raises(NodeError, match="at byte 5000"):
        run(tmp_path, MemoryBlobStore(), path="cut.txt")


@pytest.mark.parametrize(
    ("encoding", "text"),
    [("base64", "!!!!" * 1000), ("hex", "zz" * 1000), ("ascii", "é" * 1000), ("binary", "✓" * 600)],
)
def test_a_blob_that_does_not_fit_the_encoding_leaves_no_file(
    tmp_path: Path, encoding: str, text: str
) -> None:
    blobs = MemoryBlobStore()
    ref, size = blobs.put_stream([text.encode()])
    content = BlobText(ref, size, blobs)
    with pytest.raises(NodeError, match=f"cannot be written with encoding {encoding}"):
        run(tmp_path, blobs, content, operation="write", path="out.dat", encoding=encoding)
    assert list(tmp_path.iterdir()) == []


def test_a_streamed_write_keeps_overwrite_rules(tmp_path: Path) -> None:
    blobs = MemoryBlobStore()
    ref, size = blobs.put_stream([b"new" * 1000])
    content = BlobText(ref, size, blobs)
    (tmp_path / "out.txt").write_text("old")
    with pytest.raises(NodeError, match="already exists"):
        run(tmp_path, blobs, content, operation="write", path="out.txt")
    assert (tmp_path / "out.txt").read_text() == "old"
    run(tmp_path, blobs, content, operation="write", path="out.txt", overwrite=True)
    assert (tmp_path / "out.txt").read_bytes() == b"new" * 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_a_blob_inside_other_content_is_written_as_json(tmp_path: Path) -> None:
    blobs = MemoryBlobStore()
    ref, size = blobs.put_stream([b"v" * 2000])
    data = {"text": BlobText(ref, size, blobs)}
    run(tmp_path, blobs, data, operation="write", path="out.json")
    assert (tmp_path / "out.json").read_text() == '{\n  "text": "' + "v" * 2000 + '"\n}'
