"""Following an execution's Server-Sent Events: parsing, deadlines, the open response."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx

from conductor.client.errors import WaitTimeout
from storage.events import Event

# The server sends a keep-alive every 15 s; a stream silent for longer than this is dead.
STREAM_READ_TIMEOUT_S = 40.0
# Pauses before reconnecting an event stream that broke; one more failure gives up.
RECONNECT_DELAYS_S = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
MAX_RETRY_AFTER_S = 30.0


class Stream:
    """An open event-stream response as a context manager over its lines."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response

    def __enter__(self) -> Iterator[str]:
        return self.response.iter_lines()

    def __exit__(self, *exc: object) -> None:
        self.response.close()


class Deadline:
    """The time wait() has left; none when it waits for ever."""

    def __init__(self, execution_id: str, timeout_s: float | None) -> None:
        self.execution_id, self.timeout_s = execution_id, timeout_s
        self.at = None if timeout_s is None else time.monotonic() + timeout_s
        # How far past the deadline a quiet stream may block before we reconnect sooner.
        self.slack_s = 0.0 if timeout_s is None else max(0.5, timeout_s / 10)

    def remaining_s(self) -> float | None:
        """Seconds left, or None."""
        return None if self.at is None else self.at - time.monotonic()

    def check(self) -> None:
        """Raise WaitTimeout once the time is up."""
        left = self.remaining_s()
        if left is not None and left <= 0:
            assert self.timeout_s is not None
            raise WaitTimeout(self.execution_id, self.timeout_s)

    def read_timeout_s(self) -> float:
        """How long one read of the stream may block."""
        self.check()
        left = self.remaining_s()
        return STREAM_READ_TIMEOUT_S if left is None else min(left, STREAM_READ_TIMEOUT_S)

    def reconnect_sooner(self, read_s: float) -> bool:
        """Whether a quiet stream would now block too far past the deadline."""
        self.check()
        left = self.remaining_s()
        return left is not None and read_s - left > self.slack_s

    def cap(self, delay_s: float) -> float:
        """A pause that ends by the deadline."""
        left = self.remaining_s()
        return delay_s if left is None else max(0.0, min(delay_s, left))


def sse_events(lines: Iterator[str]) -> Iterator[Event | None]:
    """Parse Server-Sent Events into Events; None for a keep-alive comment."""
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield Event.model_validate_json("\n".join(data))
                data = []
        elif line.startswith(":"):
            yield None
        else:
            field, _, value = line.partition(":")
            if field == "data":
                data.append(value.removeprefix(" "))
