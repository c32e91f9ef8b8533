"""The blob collector: marks (references in text, through JSON documents) and the sweep."""

from __future__ import annotations

import json
import time

from storage.blob_gc import collect
from storage.blob_refs import BlobMarks, mentions
from storage.blobs import pack
from storage.memory_blobs import MemoryBlobStore

THRESHOLD = 1024


def _age(blobs: MemoryBlobStore, seconds: float) -> None:
    for ref in blobs.written:
        blobs.written[ref] -= seconds


def test_mentions_tell_documents_from_strings() -> None:
    blobs = MemoryBlobStore()
    text = pack({"result": "x" * 5000}, blobs, THRESHOLD)
    document = pack({"items": [f"n{i}" for i in range(400)]}, blobs, THRESHOLD)
    found = mentions(text + json.dumps({"escaped": document}))
    assert sorted(found.values()) == [False, True]  # the string's blob, then the document


def test_marks_follow_documents_into_the_strings_they_hold() -> None:
    blobs = MemoryBlobStore()
    value = {"big": "y" * 5000, "items": [f"n{i}" for i in range(400)]}
    packed = pack(value, blobs, THRESHOLD)
    assert len(blobs.blobs) == 2  # the string, and the document that refers to it
    marks = BlobMarks(blobs)
    assert marks.referenced([packed, "no reference here"]) == set(blobs.blobs)
    assert marks.referenced([]) == set()


def test_a_pass_deletes_only_old_unreferenced_blobs() -> None:
    blobs = MemoryBlobStore()
    kept = pack({"result": "k" * 5000}, blobs, THRESHOLD)
    pack({"result": "d" * 6000}, blobs, THRESHOLD)
    _age(blobs, 7200)
    blobs.put(b"young and unreferenced")
    marks = BlobMarks(blobs)
    dry = collect(blobs, lambda: marks.referenced([kept]), grace_s=3600, dry_run=True)
    assert (dry.blobs, dry.referenced, dry.young, dry.deleted) == (3, 1, 1, 1)
    assert dry.deleted_bytes == 6000 and len(blobs.blobs) == 3  # a dry run deletes nothing
    done = collect(blobs, lambda: marks.referenced([kept]), grace_s=3600)
    assert (done.deleted, done.deleted_bytes, done.as_dict()["kept_bytes"]) == (1, 6000, 5022)
    assert sorted(len(data) for data in blobs.blobs.values()) == [22, 5000]
    later = collect(blobs, set, grace_s=0, now=time.time() + 1)
    assert later.deleted == 2 and blobs.blobs == {}


def test_a_blob_stored_again_during_the_pass_is_spared() -> None:
    blobs = MemoryBlobStore()
    ref = blobs.put(b"old")
    _age(blobs, 7200)

    def marks_while_a_node_stores_it_again() -> set[str]:
        blobs.put(b"old")  # a node's output with the same content, not yet in Redis
        return set()

    done = collect(blobs, marks_while_a_node_stores_it_again, grace_s=3600)
    assert done.deleted == 0 and ref in blobs.blobs
