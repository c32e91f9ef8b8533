"""Finding the blobs something still refers to: references in stored text (Redis values,
history rows), and inside the JSON blobs they name, for the blob collector's mark phase."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

import redis

from storage.blob_store import BlobStore
from storage.keys import PREFIX

MARKER = "sha256:"  # every reference contains it; texts without it are skipped
# A reference and what follows it up to the end of its object: a string's blob says
# "kind": "text", a JSON document's does not (and may hold more references).
_REF = re.compile(r"(sha256:[0-9a-f]{64})([^}]{0,80})")
_PAGE = 500


def mentions(text: str) -> dict[str, bool]:
    """The references in `text`, each with whether it names a JSON document."""
    return {match[1]: "text" not in match[2] for match in _REF.finditer(text)}


class BlobMarks:
    """The set of referenced blobs, following JSON documents into what they refer to (each
    document is read once per instance: its content never changes)."""

    def __init__(self, blobs: BlobStore) -> None:
        self.blobs = blobs
        self._inside: dict[str, dict[str, bool]] = {}

    def referenced(self, texts: Iterable[str]) -> set[str]:
        """Every blob the texts refer to, directly or through documents."""
        found: set[str] = set()
        pending: list[dict[str, bool]] = [mentions(text) for text in texts if MARKER in text]
        while pending:
            for ref, document in pending.pop().items():
                if ref not in found:
                    found.add(ref)
                    if document:
                        pending.append(self._document(ref))
        return found

    def _document(self, ref: str) -> dict[str, bool]:
        if ref not in self._inside:
            try:
                text = self.blobs.get(ref).decode("utf-8", errors="replace")
            except FileNotFoundError:  # gone already: it refers to nothing
                text = ""
            self._inside[ref] = mentions(text)
        return self._inside[ref]


def redis_mentions(client: redis.Redis) -> Iterator[str]:
    """Every value under Conductor's keys that mentions a blob: node outputs, final results,
    event logs, the recorder's stream, cached outputs, and whatever holds them later."""
    for key in client.scan_iter(match=f"{PREFIX}:*", count=_PAGE):
        kind = client.type(key)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        for value in _values(client, key, str(kind)):
            text = value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value
            if MARKER in text:
                yield text


def _values(client: redis.Redis, key: bytes | str, kind: str) -> Iterator[bytes | str]:
    if kind == "string":
        value = client.get(key)
        if value is not None:
            yield value
    elif kind == "hash":
        for _, value in client.hscan_iter(key, count=_PAGE):
            yield value
    elif kind == "list":
        for start in range(0, int(client.llen(key)), _PAGE):
            yield from client.lrange(key, start, start + _PAGE - 1)
    elif kind == "stream":
        yield from _stream_values(client, key)


def _stream_values(client: redis.Redis, key: bytes | str) -> Iterator[bytes | str]:
    after = "-"
    while True:
        entries = client.xrange(key, min=after, count=_PAGE)
        for _entry_id, fields in entries:  # type: ignore[union-attr]
            yield from (fields or {}).values()
        if len(entries) < _PAGE:  # type: ignore[arg-type]
            return
        last = entries[-1][0]  # type: ignore[index]
        after = "(" + (last.decode() if isinstance(last, bytes) else str(last))
