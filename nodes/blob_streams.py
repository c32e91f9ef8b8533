"""File content as a stream of chunks, turned into a string's UTF-8 bytes (for a blob) and
back, for each `file-system` encoding, so a large file never sits in memory whole."""

from __future__ import annotations

import base64
import binascii
import codecs
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO

from nodes.errors import NodeError

CHUNK_BYTES = 3 * 256 * 1024  # a multiple of 3, so base64 pieces join without padding


class ContentError(NodeError):
    """Content that does not fit its encoding; the same every time."""

    retryable = False


def file_chunks(handle: BinaryIO) -> Iterator[bytes]:
    """A file's bytes, CHUNK_BYTES at a time (the last may be shorter)."""
    while chunk := handle.read(CHUNK_BYTES):
        yield chunk


def as_text_bytes(chunks: Iterable[bytes], encoding: str, shown: str) -> Iterator[bytes]:
    """The UTF-8 bytes of the string a read with `encoding` gives for these file bytes."""
    if encoding == "utf8":
        return _checked_utf8(chunks, shown)
    if encoding == "ascii":
        return _checked_ascii(chunks, shown)
    convert: Callable[[bytes], bytes] = {
        "binary": lambda chunk: chunk.decode("latin-1").encode("utf-8"),
        "hex": lambda chunk: chunk.hex().encode("ascii"),
        "base64": base64.b64encode,
    }[encoding]
    return (convert(chunk) for chunk in chunks)


def as_file_bytes(chunks: Iterable[bytes], encoding: str) -> Iterator[bytes]:
    """The file bytes a write with `encoding` makes of a string given as UTF-8 chunks."""
    if encoding == "utf8":
        return iter(chunks)
    text = _decoded(chunks)
    if encoding in ("ascii", "binary"):
        return _encoded(text, "ascii" if encoding == "ascii" else "latin-1", encoding)
    return _aligned(text, 4 if encoding == "base64" else 2, _DECODERS[encoding], encoding)


_DECODERS: dict[str, Callable[[str], bytes]] = {
    "base64": lambda text: base64.b64decode(text, validate=True),
    "hex": bytes.fromhex,
}


def _unwritable(encoding: str, exc: Exception) -> NodeError:
    return ContentError(f"content cannot be written with encoding {encoding}: {exc}")


def _decoded(chunks: Iterable[bytes]) -> Iterator[str]:
    decoder = codecs.getincrementaldecoder("utf-8")()
    for chunk in chunks:
        yield decoder.decode(chunk)
    yield decoder.decode(b"", final=True)


def _encoded(text: Iterable[str], codec: str, encoding: str) -> Iterator[bytes]:
    try:
        for piece in text:
            yield piece.encode(codec)
    except UnicodeEncodeError as exc:
        raise _unwritable(encoding, exc) from None


def _aligned(
    text: Iterable[str], unit: int, decode: Callable[[str], bytes], encoding: str
) -> Iterator[bytes]:
    """Decode text in pieces of whole `unit`s (whitespace dropped)."""
    pending = ""
    try:
        for piece in text:
            pending += "".join(piece.split())
            cut = len(pending) - len(pending) % unit
            if cut:
                yield decode(pending[:cut])
                pending = pending[cut:]
        if pending:
            yield decode(pending)
    except (binascii.Error, ValueError) as exc:
        raise _unwritable(encoding, exc) from None


def _checked_utf8(chunks: Iterable[bytes], shown: str) -> Iterator[bytes]:
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    for chunk in chunks:
        held = len(decoder.getstate()[0])
        try:
            decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            raise _not_text(shown, "utf8", exc.reason, offset - held + exc.start) from None
        offset += len(chunk)
        yield chunk
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise _not_text(shown, "utf8", exc.reason, offset - len(exc.object) + exc.start) from None


def _checked_ascii(chunks: Iterable[bytes], shown: str) -> Iterator[bytes]:
    offset = 0
    for chunk in chunks:
        if not chunk.isascii():
            at = next(i for i, byte in enumerate(chunk) if byte > 127)
            raise _not_text(shown, "ascii", "ordinal not in range(128)", offset + at)
        offset += len(chunk)
        yield chunk


def _not_text(shown: str, encoding: str, reason: str, at: int) -> NodeError:
    message = f"{shown} is not {encoding} text ({reason} at byte {at}); "
    return ContentError(message + "read it with encoding: base64")
