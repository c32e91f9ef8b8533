"""`http-request` response bodies above the blob threshold go to the blob store as they
arrive: the same string as without a store, one blob, and the size limit still holds."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conductor.model.blob_text import BlobText
from nodes.base import NodeEnvironment
from nodes.errors import NodeError
from storage.memory_blobs import MemoryBlobStore
from tests.unit.test_node_http_request import (
    LOOPBACK_ALLOWED,
    LocalServer,
    request,
    serving,
)


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    """The test server of test_node_http_request, for this module."""
    with serving() as running:
        yield running


def _streaming() -> tuple[NodeEnvironment, MemoryBlobStore]:
    blobs = MemoryBlobStore()
    environment = NodeEnvironment(
        http_allow=LOOPBACK_ALLOWED.http_allow, blobs=blobs, blob_threshold_bytes=1024
    )
    return environment, blobs


@pytest.mark.parametrize("path", ["large/300000", "stream/300000"])
def test_a_large_body_is_one_blob_holding_the_same_string(server: LocalServer, path: str) -> None:
    environment, blobs = _streaming()
    streamed = request(server.url(path), environment=environment)
    plain = request(server.url(path))
    assert isinstance(streamed["data"], BlobText)
    assert streamed["result"] is streamed["data"]
    assert streamed["data"].text() == plain["data"]
    assert len(blobs.blobs) == 1


def test_small_and_json_bodies_are_values(server: LocalServer) -> None:
    environment, blobs = _streaming()
    assert request(server.url("text"), environment=environment)["data"] == "héllo, world"
    assert isinstance(request(server.url("items"), environment=environment)["data"], list)
    assert blobs.blobs == {}


def test_the_size_limit_holds_while_streaming(server: LocalServer) -> None:
    environment, _ = _streaming()
    with pytest.raises(NodeError, match="larger than maxResponseBytes"):
        request(server.url("stream/300000"), environment=environment, maxResponseBytes=100_000)
