"""The /v1/ws protocol's messages: parsing a client's, and the server's replies."""

from __future__ import annotations

import json
from typing import Any

Message = dict[str, Any]
CONTROL_OPS = ("cancel", "pause", "resume", "retry", "step")


class BadMessage(ValueError):
    """A client message the server cannot act on (the text names the problem)."""


def parse_message(text: str) -> Message:
    """A client message: a JSON object with a string `op`."""
    try:
        message = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadMessage(f"not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise BadMessage("a message must be a JSON object")
    if not isinstance(message.get("op"), str):
        raise BadMessage("op: required (a string)")
    return message


def execution_id_of(message: Message) -> str:
    """The message's non-empty `execution_id`."""
    value = message.get("execution_id")
    if not isinstance(value, str) or not value:
        raise BadMessage(f"execution_id: required for {message['op']} (a non-empty string)")
    return value


def after_of(message: Message) -> int:
    """The message's `after` (the last seq seen; 0 when absent)."""
    value = message.get("after", 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadMessage(f"after: must be the last seq seen (an integer >= 0), not {value!r}")
    return value


def ref_of(text: str) -> Any:
    """The `ref` of a message, if it parses and has one."""
    try:
        message = json.loads(text)
    except json.JSONDecodeError:
        return None
    return message.get("ref") if isinstance(message, dict) else None


def with_ref(ref: Any) -> Message:
    """The `ref` field to echo in a reply (none when the request had none)."""
    return {} if ref is None else {"ref": ref}


def error_message(code: str, message: str, ref: Any, execution_id: str | None = None) -> Message:
    """An error reply."""
    error: Message = {"type": "error", "code": code, "message": message}
    if execution_id is not None:
        error["execution_id"] = execution_id
    return {**error, **with_ref(ref)}
