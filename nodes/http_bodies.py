"""`http-request` response bodies above the blob threshold: streamed into the blob store as
the string the node outputs (text decoded by its charset, anything else base64), never held
whole. JSON is read whole: it is parsed."""

from __future__ import annotations

import base64
import codecs
from collections.abc import Iterable, Iterator

from conductor.model.blob_text import BlobText
from nodes.base import NodeEnvironment

TEXT, BINARY, JSON = "text", "binary", "json"


def read_body(
    chunks: Iterator[bytes], content_type: str, environment: NodeEnvironment
) -> tuple[bytes, BlobText | None]:
    """The body's bytes, or, once past the threshold (not JSON, with a blob store), its first
    bytes (for messages) and the whole body as a blob."""
    media = content_type.split(";", maxsplit=1)[0].strip().lower()
    kind = JSON if media == "application/json" or media.endswith("+json") else BINARY
    kind = TEXT if kind == BINARY and is_text(media) else kind
    charset = charset_of(content_type)
    body = bytearray()
    blobs = environment.blobs
    for chunk in chunks:
        body += chunk
        if blobs is not None and kind != JSON and len(body) > environment.blob_threshold_bytes:
            head = bytes(body)
            converted = _as_text(_joined(head, chunks), kind, charset)
            ref, size = blobs.put_stream(converted)
            return head, BlobText(ref, size, blobs)
    return bytes(body), None


def _joined(head: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield head
    yield from rest


def _as_text(chunks: Iterable[bytes], kind: str, charset: str) -> Iterator[bytes]:
    """The UTF-8 bytes of the string the node gives for the body."""
    if kind == TEXT:
        decoder = codecs.getincrementaldecoder(charset)(errors="replace")
        for chunk in chunks:
            yield decoder.decode(chunk).encode("utf-8")
        yield decoder.decode(b"", final=True).encode("utf-8")
        return
    pending = b""  # base64 in whole groups of three bytes, so the pieces join
    for chunk in chunks:
        pending += chunk
        cut = len(pending) - len(pending) % 3
        yield base64.b64encode(pending[:cut])
        pending = pending[cut:]
    yield base64.b64encode(pending)


def is_text(kind: str) -> bool:
    """Media types whose body is text (no type at all counts as text)."""
    textual = ("json", "xml", "javascript", "x-www-form-urlencoded", "yaml", "csv")
    return not kind or kind.startswith("text/") or any(word in kind for word in textual)


def charset_of(content_type: str) -> str:
    """The charset named in a Content-Type, or UTF-8."""
    for part in content_type.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.lower() == "charset" and value:
            charset = value.strip("\"' ")
            try:
                "".encode(charset)
            except LookupError:
                break
            return charset
    return "utf-8"
