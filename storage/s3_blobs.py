"""Blobs in an S3-compatible bucket (AWS, MinIO, Ceph...), so workers on many hosts share
outputs without a shared disk. Credentials, region and endpoint come from the usual AWS_*
variables (boto3 reads them); they are never logged."""

from __future__ import annotations

import errno
import hashlib
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from storage.blob_store import (
    CHUNK_BYTES,
    BlobInfo,
    BlobWriteFailed,
    content_ref,
    digest_of,
    reference,
)

PART_BYTES = 8 * 1024 * 1024  # a multipart upload's part (S3 wants 5 MiB or more)
_PARTIAL = ".partial"
_MISSING = {"NoSuchKey", "404", "NotFound"}


class S3BlobStore:
    """Blobs at `<prefix>/<first two hex digits>/<digest>` in one bucket."""

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    @classmethod
    def from_env(cls, bucket: str, prefix: str) -> S3BlobStore:
        """A store whose client is configured by AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
        AWS_SECRET_ACCESS_KEY and AWS_DEFAULT_REGION."""
        config = Config(connect_timeout=5, read_timeout=60, retries={"mode": "standard"})
        return cls(boto3.client("s3", config=config), bucket, prefix)

    def put(self, data: bytes) -> str:
        """Upload bytes; storing them again refreshes their time (the collector's grace)."""
        ref = content_ref(data)
        with _writing(self.location()):
            self.client.put_object(Bucket=self.bucket, Key=self._key(ref), Body=data)
        return ref

    def put_stream(self, chunks: Iterable[bytes]) -> tuple[str, int]:
        """Hash while uploading parts of a multipart upload to a temporary key, then copy it
        to its digest's key; content smaller than one part is one upload."""
        hasher = hashlib.sha256()
        size, buffer = 0, bytearray()
        upload: _Upload | None = None
        with _writing(self.location()):
            try:
                for chunk in chunks:
                    hasher.update(chunk)
                    size += len(chunk)
                    buffer += chunk
                    if len(buffer) >= PART_BYTES:
                        upload = upload or _Upload.start(self, self._partial_key())
                        upload.send(bytes(buffer))
                        buffer.clear()
                ref = reference(hasher.hexdigest())
                if upload is None:
                    self.client.put_object(
                        Bucket=self.bucket, Key=self._key(ref), Body=bytes(buffer)
                    )
                    return ref, size
                if buffer:
                    upload.send(bytes(buffer))
                upload.finish()
                self._settle(upload.key, ref)
            except BaseException:
                if upload is not None:
                    upload.abort()
                raise
        return ref, size

    def _settle(self, partial_key: str, ref: str) -> None:
        source = {"Bucket": self.bucket, "Key": partial_key}
        self.client.copy(source, self.bucket, self._key(ref))  # multipart copy when large
        self.client.delete_object(Bucket=self.bucket, Key=partial_key)

    def get(self, ref: str) -> bytes:
        """Download a blob; FileNotFoundError when unknown."""
        data: bytes = self._object(ref)["Body"].read()
        return data

    def read_chunks(self, ref: str) -> Iterator[bytes]:
        """Download a blob a chunk at a time (FileNotFoundError at once when unknown)."""
        body = self._object(ref)["Body"]

        def chunks() -> Iterator[bytes]:
            with body:
                yield from body.iter_chunks(CHUNK_BYTES)

        return chunks()

    def scan(self) -> Iterator[BlobInfo]:
        """Every blob under the prefix (not the partial uploads)."""
        for item in self._listing(self._key_of("")):
            folder, _, name = item["Key"][len(self._key_of("")) :].partition("/")
            if len(folder) != 2 or "/" in name:
                continue
            try:
                ref = reference(name)
                digest_of(ref)
            except ValueError:
                continue
            yield BlobInfo(ref, int(item["Size"]), _written(item["LastModified"]))

    def delete(self, ref: str, written_before: float) -> bool:
        """Delete the blob unless it was stored at or after `written_before`."""
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(ref))
        except ClientError as exc:
            if _code(exc) in _MISSING:
                return False
            raise
        if _written(head["LastModified"]) >= written_before:
            return False
        self.client.delete_object(Bucket=self.bucket, Key=self._key(ref))
        return True

    def sweep_partial(self, written_before: float) -> int:
        """Delete temporary objects and abort multipart uploads started before the cutoff."""
        partial = self._key_of(_PARTIAL, "")
        swept = 0
        for item in self._listing(partial):
            if _started(item["Key"], item["LastModified"].timestamp()) < written_before:
                self.client.delete_object(Bucket=self.bucket, Key=item["Key"])
                swept += 1
        pages = self.client.get_paginator("list_multipart_uploads")
        for page in pages.paginate(Bucket=self.bucket, Prefix=partial):
            for upload in page.get("Uploads", []):
                if _started(upload["Key"], upload["Initiated"].timestamp()) < written_before:
                    self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    swept += 1
        return swept

    def location(self) -> str:
        """The bucket and prefix."""
        return f"s3://{self.bucket}/{self.prefix}"

    def _object(self, ref: str) -> dict[str, Any]:
        try:
            found: dict[str, Any] = self.client.get_object(Bucket=self.bucket, Key=self._key(ref))
        except ClientError as exc:
            if _code(exc) in _MISSING:
                raise FileNotFoundError(f"no blob {ref} in {self.location()}") from None
            raise
        return found

    def _listing(self, prefix: str) -> Iterator[dict[str, Any]]:
        pages = self.client.get_paginator("list_objects_v2")
        for page in pages.paginate(Bucket=self.bucket, Prefix=prefix):
            yield from page.get("Contents", [])

    def _partial_key(self) -> str:
        """A temporary key named after when the upload started (some S3 servers report no
        real start time for a multipart upload)."""
        return self._key_of(_PARTIAL, f"{time.time():.3f}-{uuid.uuid4().hex}")

    def _key(self, ref: str) -> str:
        digest = digest_of(ref)
        return self._key_of(digest[:2], digest)

    def _key_of(self, *parts: str) -> str:
        return "/".join([self.prefix, *parts] if self.prefix else list(parts))


class _Upload:
    """One multipart upload in progress."""

    def __init__(self, store: S3BlobStore, key: str, upload_id: str) -> None:
        self.store, self.key, self.upload_id = store, key, upload_id
        self.parts: list[dict[str, Any]] = []

    @classmethod
    def start(cls, store: S3BlobStore, key: str) -> _Upload:
        created = store.client.create_multipart_upload(Bucket=store.bucket, Key=key)
        return cls(store, key, created["UploadId"])

    def send(self, data: bytes) -> None:
        number = len(self.parts) + 1
        sent = self.store.client.upload_part(
            Bucket=self.store.bucket, Key=self.key, UploadId=self.upload_id,
            PartNumber=number, Body=data,
        )  # fmt: skip
        self.parts.append({"PartNumber": number, "ETag": sent["ETag"]})

    def finish(self) -> None:
        self.store.client.complete_multipart_upload(
            Bucket=self.store.bucket, Key=self.key, UploadId=self.upload_id,
            MultipartUpload={"Parts": self.parts},
        )  # fmt: skip

    def abort(self) -> None:
        with suppress(BotoCoreError, ClientError):  # else the collector aborts it later
            self.store.client.abort_multipart_upload(
                Bucket=self.store.bucket, Key=self.key, UploadId=self.upload_id
            )


@contextmanager
def _writing(location: str) -> Iterator[None]:
    """Turn S3 errors while storing into BlobWriteFailed, as a full disk is."""
    try:
        yield
    except ClientError as exc:
        message = f"cannot store a blob in {location}: {_code(exc)}"
        raise BlobWriteFailed(errno.EIO, message) from exc
    except BotoCoreError as exc:
        message = f"cannot store a blob in {location}: {type(exc).__name__}"
        raise BlobWriteFailed(errno.EIO, message) from exc


def _written(last_modified: datetime) -> float:
    """The latest an object may have been written: S3 keeps whole seconds."""
    return last_modified.timestamp() + 1


def _started(key: str, reported: float) -> float:
    """When a partial upload started: from its key, else what the server reports."""
    stamp = key.rsplit("/", 1)[-1].split("-", 1)[0]
    try:
        return float(stamp)
    except ValueError:
        return reported


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
