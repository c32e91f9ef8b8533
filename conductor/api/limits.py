"""Request body limit as ASGI middleware: a 413 before a large body is read into memory."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from conductor.api.problems import ApiProblem, problem_response

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BODY_BYTES = 6 * 1024 * 1024  # a 5 MiB Blueprint plus its inputs


class BodyLimit:
    """Refuses bodies over `max_bytes`: by Content-Length before reading, or while reading a
    chunked body (held in memory up to the limit, then passed on)."""

    def __init__(self, app: App, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        if declared is not None:
            await self.app(scope, receive, send)
            return
        # No Content-Length (chunked): read up to the limit here, then hand the body on.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit_mib = self.max_bytes / (1024 * 1024)
        problem = ApiProblem(
            413, "PAYLOAD_TOO_LARGE", f"the request body is larger than {limit_mib:g} MiB"
        )
        await problem_response(problem)(scope, receive, send)
