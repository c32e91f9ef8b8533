"""pack/unpack: large strings become one blob each, read back as strings or references."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conductor.model.blob_text import BlobText
from storage.blob_files import FilesystemBlobStore
from storage.blobs import BlobUrlError, materialize, open_blob_store, pack, unpack
from storage.memory_blobs import MemoryBlobStore

THRESHOLD = 1024


def test_a_small_output_stays_inline() -> None:
    blobs = MemoryBlobStore()
    packed = pack({"result": "small", "n": 1}, blobs, THRESHOLD)
    assert json.loads(packed) == {"result": "small", "n": 1}
    assert unpack(packed, blobs) == {"result": "small", "n": 1}
    assert blobs.blobs == {}


def test_one_large_string_in_two_places_is_one_blob() -> None:
    blobs = MemoryBlobStore()
    text = "é" * 5000
    packed = pack({"result": text, "content": text, "size": 5}, blobs, THRESHOLD)
    assert len(packed) < 300
    assert list(blobs.blobs.values()) == [text.encode()]
    assert unpack(packed, blobs) == {"result": text, "content": text, "size": 5}
    # equal strings that are distinct objects are stored once too (content addressing)
    pack({"a": "é" * 5000, "b": "".join(["é"] * 5000)}, blobs, THRESHOLD)
    assert len(blobs.blobs) == 1


def test_lazy_unpack_gives_references_and_materialize_reads_them_once() -> None:
    blobs = MemoryBlobStore()
    text = "x" * 5000
    unpacked = unpack(pack({"result": text, "content": text}, blobs, THRESHOLD), blobs, lazy=True)
    assert isinstance(unpacked["result"], BlobText)
    assert unpacked["result"] is unpacked["content"]
    assert unpacked["result"].size == 5000
    assert b"".join(unpacked["result"].chunks()) == text.encode()
    # a reference packs back to itself, without reading the blob
    assert json.loads(pack(unpacked, blobs, THRESHOLD))["result"]["$blob"] in blobs.blobs
    read = materialize([unpacked, (unpacked["result"],)])
    assert read[0] == {"result": text, "content": text}
    assert read[0]["result"] is read[0]["content"] is read[1][0]


def test_an_output_of_many_small_strings_is_one_json_blob() -> None:
    blobs = MemoryBlobStore()
    value = {"items": [f"item {i}" for i in range(500)]}
    packed = json.loads(pack(value, blobs, THRESHOLD))
    assert set(packed) == {"$blob", "bytes"}
    assert unpack(json.dumps(packed), blobs) == value
    nested = {"items": ["y" * 2000, *[f"item {i}" for i in range(500)]]}
    assert unpack(pack(nested, blobs, THRESHOLD), blobs) == nested


def test_open_blob_store_by_url(tmp_path: Path) -> None:
    store = open_blob_store(f"file://{tmp_path}/blobs")
    assert isinstance(store, FilesystemBlobStore)
    assert store.root == tmp_path / "blobs"
    for bad in ("ftp://host/x", "s3://", "file://"):
        with pytest.raises(BlobUrlError, match="not a blob store URL"):
            open_blob_store(bad)
