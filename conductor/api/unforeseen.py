"""The last net under every route: an unforeseen error is logged and answered as a 500
problem (INTERNAL_ERROR), never a traceback, and the connection stays usable."""

from __future__ import annotations

import logging

from conductor.api.limits import App, Message, Receive, Scope, Send
from conductor.api.problems import ApiProblem, problem_response

log = logging.getLogger("conductor.api")


class Unforeseen:
    """ASGI middleware: a route's unexpected exception becomes a problem response when no
    response has started (Starlette's own 500 handler re-raises, and uvicorn then drops the
    keep-alive connection)."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            log.exception("%s %s failed", scope.get("method"), scope.get("path"))
            if started:
                raise
            detail = f"internal error ({type(exc).__name__}); the API server's log has the details"
            problem = ApiProblem(500, "INTERNAL_ERROR", detail)
            await problem_response(problem)(scope, receive, send)
