"""A bound on open Server-Sent Event streams: past it a client gets 503 with Retry-After (it
never gets a 200 with an empty body), and every stream gives its slot back when it ends."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping

from fastapi.responses import StreamingResponse

from conductor.api.limits import Receive, Scope, Send
from conductor.api.problems import ApiProblem
from conductor.model.settings import SettingsError

MAX_STREAMS = 500  # each open stream holds one of the API's 1000 threads while it waits
RETRY_AFTER_S = 5


class StreamSlots:
    """How many event streams are open, out of `limit`."""

    def __init__(self, limit: int = MAX_STREAMS) -> None:
        self.limit = limit
        self.open = 0
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> StreamSlots:
        """CONDUCTOR_API_MAX_STREAMS, else the default."""
        env = os.environ if env is None else env
        text = env.get("CONDUCTOR_API_MAX_STREAMS")
        if text is None:
            return cls()
        if not text.strip().isdigit() or int(text) < 1:
            raise SettingsError(
                f"CONDUCTOR_API_MAX_STREAMS must be a positive integer, not {text!r}"
            )
        return cls(int(text))

    def take(self) -> None:
        """Take a slot, or raise a 503 problem when all are taken."""
        with self._lock:
            if self.open >= self.limit:
                raise ApiProblem(
                    503, "SERVICE_UNAVAILABLE",
                    f"too many open event streams (max {self.limit}), retry later",
                    headers={"Retry-After": str(RETRY_AFTER_S)},
                )  # fmt: skip
            self.open += 1

    def give_back(self) -> None:
        """Free a slot."""
        with self._lock:
            self.open -= 1


class SlotStream(StreamingResponse):
    """A streaming response that frees its slot however it ends (done, client gone, error)."""

    def __init__(self, content: Iterator[str], slots: StreamSlots, **kwargs: object) -> None:
        super().__init__(content, **kwargs)  # type: ignore[arg-type]
        self.slots = slots

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.slots.give_back()
