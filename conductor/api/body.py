"""Request bodies parsed as Blueprint files are: a parse error names where it failed (line and
column, byte offset, or the path of a number JSON cannot carry) instead of a bare 400."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.routing import APIRoute

from conductor.model.loader import parse_json_bytes
from conductor.model.problems import InvalidBlueprint


class BodyInvalid(HTTPException):
    """A JSON body that does not parse: 400, with every problem and where it is."""

    def __init__(self, exc: InvalidBlueprint) -> None:
        super().__init__(400, f"the request body is not acceptable JSON: {exc.problems[0]}")
        self.errors = [
            {"path": p.path, "code": p.code.value, "message": p.message} for p in exc.problems
        ]


class JsonBodyRequest(Request):
    """A request whose `json()` is Conductor's strict parser."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            try:
                self._json = parse_json_bytes(await self.body())
            except InvalidBlueprint as exc:
                raise BodyInvalid(exc) from None
        return self._json


class JsonBodyRoute(APIRoute):
    """Routes whose JSON bodies go through JsonBodyRequest."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            return await handler(JsonBodyRequest(request.scope, request.receive))

        return route
