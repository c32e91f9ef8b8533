"""The API under hostile framing and auth (issue 15): a real `conductor api`, raw sockets."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest

from conductor.embedded import ApiProcess, WorkerProcess

TOKEN = "framing-token"


@pytest.fixture(scope="module")
def guarded(api_env: dict[str, str], worker: WorkerProcess) -> Iterator[ApiProcess]:
    """`conductor api` with a token."""
    process = ApiProcess({**api_env, "CONDUCTOR_API_TOKEN": TOKEN}).start()
    yield process
    process.stop()


def exchange(api: ApiProcess, head: bytes, body: bytes = b"", timeout_s: float = 10) -> bytes:
    """Send raw bytes; the response's status line and headers (read until the blank line)."""
    with socket.create_connection(("127.0.0.1", api.port), timeout=timeout_s) as conn:
        conn.sendall(head + body)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = conn.recv(65536)
            if not chunk:
                break
            received += chunk
    return received


def test_content_length_with_transfer_encoding_is_refused(api: ApiProcess) -> None:
    body = b'5\r\n{"a":\r\n0\r\n\r\n'
    head = (
        b"POST /v1/executions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    reply = exchange(api, head, body)
    assert reply.startswith(b"HTTP/1.1 400"), reply
    assert b"application/problem+json" in reply and b"connection: close" in reply.lower()


@pytest.mark.parametrize(
    "framing", [b"Content-Length: 6000000\r\n", b"Transfer-Encoding: chunked\r\n"]
)
def test_no_body_is_read_before_the_token_is_checked(guarded: ApiProcess, framing: bytes) -> None:
    """Only the head is sent: the 401 must come without waiting for (or buffering) the body."""
    head = (
        b"POST /v1/executions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + framing
        + b"\r\n"
    )
    reply = exchange(guarded, head, b"1000\r\n" + b"x" * 4096 if b"chunked" in framing else b"")
    assert reply.startswith(b"HTTP/1.1 401"), reply
    assert b"www-authenticate: bearer" in reply.lower()


def test_the_bearer_scheme_is_case_insensitive(guarded: ApiProcess) -> None:
    with httpx.Client(base_url=guarded.url, timeout=15) as http:
        for scheme in ("bearer", "BEARER", "Bearer", "bEaReR"):
            response = http.get("/v1/nodes", headers={"Authorization": f"{scheme} {TOKEN}"})
            assert response.status_code == 200, (scheme, response.text)
        for header in (f"Bearer {TOKEN.upper()}", f"Basic {TOKEN}", TOKEN, f"Bearer{TOKEN}"):
            response = http.get("/v1/nodes", headers={"Authorization": header})
            assert response.status_code == 401, header


@pytest.mark.parametrize("order", ["valid first", "valid last"])
def test_two_authorization_headers_are_refused(guarded: ApiProcess, order: str) -> None:
    """A proxy may check one Authorization header and the API another: two are never accepted
    (the guard took the last, so a wrong first one in front of the token passed)."""
    valid, wrong = f"Authorization: Bearer {TOKEN}\r\n", "Authorization: Bearer wrong\r\n"
    pair = valid + wrong if order == "valid first" else wrong + valid
    head = f"GET /v1/nodes HTTP/1.1\r\nHost: x\r\n{pair}\r\n".encode()
    reply = exchange(guarded, head)
    assert reply.startswith(b"HTTP/1.1 401"), reply
