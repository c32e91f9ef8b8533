"""The blob store contract, on the in-memory twin, a folder and S3 (moto's server)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.blob_files import FilesystemBlobStore
from storage.blob_store import BlobStore, BlobWriteFailed
from storage.memory_blobs import MemoryBlobStore
from tests.s3_server import S3Server

MIB = 1024 * 1024


@pytest.fixture(params=["memory", "filesystem", "s3"])
def blob_store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    """Each blob store, empty."""
    if request.param == "memory":
        return MemoryBlobStore()
    if request.param == "filesystem":
        return FilesystemBlobStore(tmp_path / "blobs")
    from storage.s3_blobs import S3BlobStore  # noqa: PLC0415  (needs the s3 extra)

    server: S3Server = request.getfixturevalue("s3_server")
    return S3BlobStore(server.client(), server.new_bucket(), "some/prefix")


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _chunks(total: int, size: int = MIB) -> Iterator[bytes]:
    for start in range(0, total, size):
        yield bytes([start // size % 251]) * min(size, total - start)


def test_put_returns_the_content_address_and_get_reads_it(blob_store: BlobStore) -> None:
    ref = blob_store.put(b"hello")
    assert ref == _sha(b"hello")
    assert blob_store.get(ref) == b"hello"
    assert b"".join(blob_store.read_chunks(ref)) == b"hello"


def test_the_same_content_is_stored_once(blob_store: BlobStore) -> None:
    first = blob_store.put(b"same")
    second, size = blob_store.put_stream([b"sa", b"me"])
    assert first == second and size == 4
    assert [(info.ref, info.size) for info in blob_store.scan()] == [(first, 4)]


def test_a_stream_larger_than_a_part_is_stored_whole(blob_store: BlobStore) -> None:
    total = 20 * MIB + 123  # S3: three parts of a multipart upload
    expected = b"".join(_chunks(total))
    ref, size = blob_store.put_stream(_chunks(total))
    assert (ref, size) == (_sha(expected), total)
    read = list(blob_store.read_chunks(ref))
    assert b"".join(read) == expected
    assert max(len(chunk) for chunk in read) <= MIB  # read a chunk at a time
    assert [info.ref for info in blob_store.scan()] == [ref]  # no temporary copy left


def test_a_stream_that_fails_leaves_nothing(blob_store: BlobStore) -> None:
    def failing() -> Iterator[bytes]:
        yield from _chunks(10 * MIB)
        raise RuntimeError("the source broke")

    with pytest.raises(RuntimeError, match="the source broke"):
        blob_store.put_stream(failing())
    assert list(blob_store.scan()) == []
    assert blob_store.sweep_partial(time.time() + 60) == 0


def test_unknown_and_malformed_references(blob_store: BlobStore) -> None:
    missing = _sha(b"never stored")
    with pytest.raises(FileNotFoundError):
        blob_store.get(missing)
    with pytest.raises(FileNotFoundError):
        blob_store.read_chunks(missing)
    for bad in ("sha256:../../etc/passwd", "md5:abc", "sha256:" + "A" * 64):
        with pytest.raises(ValueError, match="not a blob reference"):
            blob_store.get(bad)
    assert blob_store.delete(missing, time.time() + 60) is False


def test_delete_spares_a_blob_written_since_the_cutoff(blob_store: BlobStore) -> None:
    before = time.time() - 5
    ref = blob_store.put(b"young")
    assert blob_store.delete(ref, before) is False  # written after the cutoff
    assert blob_store.get(ref) == b"young"
    assert blob_store.delete(ref, time.time() + 5) is True
    assert list(blob_store.scan()) == []
    with pytest.raises(FileNotFoundError):
        blob_store.get(ref)


def test_scan_reports_size_and_write_time(blob_store: BlobStore) -> None:
    start = time.time()
    refs = {blob_store.put(b"a" * 10), blob_store.put(b"b" * 20)}
    found = {info.ref: info for info in blob_store.scan()}
    assert set(found) == refs
    assert sorted(info.size for info in found.values()) == [10, 20]
    assert all(abs(info.modified - start) < 60 for info in found.values())


def test_location_names_the_store(blob_store: BlobStore) -> None:
    location = blob_store.location()
    assert location.split("://")[0] in {"memory", "file", "s3"}
    assert "secret" not in location


def test_a_folder_store_sweeps_old_temporary_files(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)
    store.put(b"x")
    partial = tmp_path / ".partial"
    (partial / ".tmp-abandoned").write_bytes(b"half")
    assert store.sweep_partial(time.time() - 60) == 0  # still within the grace period
    assert store.sweep_partial(time.time() + 60) == 1
    assert list(partial.iterdir()) == []


def test_s3_sweeps_abandoned_multipart_uploads(s3_server: S3Server) -> None:
    from storage.s3_blobs import S3BlobStore  # noqa: PLC0415

    client, bucket = s3_server.client(), s3_server.new_bucket()
    store = S3BlobStore(client, bucket, "p")
    started = f"p/.partial/{time.time():.3f}-abandoned"  # moto dates every upload 2010
    client.create_multipart_upload(Bucket=bucket, Key=started)
    client.put_object(Bucket=bucket, Key="p/.partial/leftover", Body=b"x")
    assert store.sweep_partial(time.time() - 60) == 0  # both within the grace period
    assert store.sweep_partial(time.time() + 60) == 2
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert client.list_objects_v2(Bucket=bucket).get("Contents", []) == []


def test_s3_write_errors_are_blob_write_failures(s3_server: S3Server) -> None:
    from storage.s3_blobs import S3BlobStore  # noqa: PLC0415

    store = S3BlobStore(s3_server.client(), "no-such-bucket", "")
    with pytest.raises(BlobWriteFailed, match="cannot store a blob in s3://no-such-bucket/"):
        store.put(b"x")
    with pytest.raises(BlobWriteFailed):
        store.put_stream(_chunks(9 * MIB))


def test_storing_content_again_refreshes_its_time(blob_store: BlobStore) -> None:
    ref = blob_store.put(b"shared by a new output")
    time.sleep(1.1)  # S3 keeps whole seconds
    cutoff = time.time()
    assert blob_store.put_stream([b"shared by ", b"a new output"])[0] == ref
    assert blob_store.delete(ref, cutoff) is False  # the collector spares it
    assert blob_store.get(ref) == b"shared by a new output"
