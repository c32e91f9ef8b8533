"""A real S3-compatible HTTP server for tests: moto's server mode in its own process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conductor.embedded import free_port
from tests.ci import in_ci

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "conductor-test-key",
    "AWS_SECRET_ACCESS_KEY": "conductor-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass(frozen=True)
class S3Server:
    """A running moto server."""

    url: str

    def env(self) -> dict[str, str]:
        """The AWS_* variables that point boto3 at this server."""
        return {"AWS_ENDPOINT_URL": self.url, **CREDENTIALS}

    def client(self) -> Any:
        """A boto3 S3 client on this server."""
        import boto3  # noqa: PLC0415  (optional dependency)

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
        )

    def new_bucket(self) -> str:
        """An empty bucket with a fresh name."""
        name = f"conductor-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name)
        return name


def _moto_server() -> str | None:
    found = Path(sys.executable).parent / "moto_server"
    return str(found) if found.exists() else shutil.which("moto_server")


@contextmanager
def running_s3_server(timeout_s: float = 30.0) -> Iterator[S3Server]:
    """Start moto_server on a free port (skip, or fail in CI, when moto is not installed)."""
    binary = _moto_server()
    if binary is None:
        message = "moto[server] is not installed (pip install -e '.[dev]')"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    port = free_port()
    log = Path(tempfile.gettempdir()) / f"conductor-moto-{port}.log"
    with log.open("wb") as output:  # the server keeps its own copy of the descriptor
        process = subprocess.Popen(
            [binary, "-H", "127.0.0.1", "-p", str(port)], stdout=output, stderr=output
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while not _answers(url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"moto_server did not start on {url}")
            time.sleep(0.1)
        yield S3Server(url)
    finally:
        process.terminate()
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        if process.poll() is None:
            process.kill()
            process.wait()
        if not os.environ.get("CONDUCTOR_KEEP_S3_LOG"):  # kept, it explains a failed request
            log.unlink(missing_ok=True)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):
            return True
    except OSError:
        return False
