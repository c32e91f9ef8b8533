"""The first thing a request meets, before any byte of its body is read: ambiguous framing
(Content-Length with Transfer-Encoding, a request-smuggling vector) is a 400, and a missing or
wrong bearer token a 401."""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from conductor.api.limits import App, Receive, Scope, Send
from conductor.api.problems import ApiProblem, problem_response

OPEN_PATHS = frozenset({"/healthz", "/ui"})
# The console's static files load before sign-in; its data comes from the API, behind the token.
# Webhook deliveries carry an HMAC signature instead of the token (conductor/api/hooks.py).
OPEN_PREFIXES = ("/ui/", "/v1/hooks/")


def bearer_matches(header: str, token: str) -> bool:
    """Whether an Authorization header carries `token`; the scheme's case does not matter
    (RFC 7235), the token's does."""
    scheme, _, credentials = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(credentials.strip().encode(), token.encode())


class RequestGuard:
    """ASGI middleware, outermost: framing checks, then the token (when one is set)."""

    def __init__(self, app: App, token: str | None = None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if b"content-length" in headers and b"transfer-encoding" in headers:
            problem = ApiProblem(
                400, "BAD_REQUEST",
                "send either Content-Length or Transfer-Encoding, not both",
                headers={"Connection": "close"},
            )  # fmt: skip
            await problem_response(problem)(scope, receive, send)
            return
        if self.token and not _open(scope["path"]):
            given = _single_authorization(scope.get("headers") or [])
            if not bearer_matches(given, self.token):
                problem = ApiProblem(
                    401, "UNAUTHORIZED", "send Authorization: Bearer <CONDUCTOR_API_TOKEN>",
                    headers={"WWW-Authenticate": "Bearer", "Connection": "close"},
                )  # fmt: skip
                await problem_response(problem)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _single_authorization(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The one Authorization header; none when there are several (a proxy in front may have
    checked another one than the last, which a mapping of the headers keeps)."""
    given = [value for name, value in headers if name == b"authorization"]
    return given[0].decode("latin-1") if len(given) == 1 else ""


def _open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)
