"""Live events of executions (Redis pub/sub) behind an interface.

`RedisEventSource` opens one pub/sub connection per subscription (a CLI waiting for one
execution). `FanOutEventSource` shares one pattern subscription among every subscriber of a
process (the API: 1000 viewers cost one Redis connection, not 1000). Both confirm a
subscription before returning it, so a backlog read after `subscribe` misses nothing.
"""

from __future__ import annotations

import json
import threading
import time
import weakref
from collections import deque
from typing import Any, Protocol

import redis

from storage import keys

CONFIRM_TIMEOUT_S = 10.0
FAN_OUT_WAKE_S = 1.0
# A subscriber this far behind loses its oldest messages; a viewer reads a seq gap back from
# the execution's event log, and the terminal event is always the newest.
SUBSCRIBER_BACKLOG = 10_000
_TERMINAL = frozenset({"execution.succeeded", "execution.failed", "execution.cancelled"})


class EventsMissed(redis.ConnectionError):
    """The subscription's connection was lost and made again: events published in between
    were missed (read them from the execution's event log); the subscription goes on."""


class _ReconnectWatch:
    """Set when redis-py connects a pub/sub again (after subscribing it again)."""

    def __init__(self, pubsub: redis.client.PubSub) -> None:
        self.resubscribe = pubsub.on_connect
        self.reconnected = threading.Event()

    def on_connect(self, connection: Any) -> None:
        self.resubscribe(connection)
        self.reconnected.set()


def _watch_reconnects(pubsub: redis.client.PubSub) -> threading.Event:
    """An event set whenever redis-py reconnects `pubsub` (call before its first command:
    the connection keeps a weak reference to the callback, the pub/sub a strong one)."""
    watch = _ReconnectWatch(pubsub)
    setattr(pubsub, "on_connect", watch.on_connect)  # noqa: B010
    return watch.reconnected


class Subscription(Protocol):
    """Published event payloads (JSON text), in order."""

    def get(self, timeout_s: float) -> str | None:
        """The next payload, or None when none came within `timeout_s`; raises EventsMissed
        when the connection was lost and made again (payloads may have been missed), another
        StoreError when it is lost for good."""

    def close(self) -> None:
        """Stop receiving (idempotent)."""


class EventSource(Protocol):
    """Subscriptions to executions' live events."""

    def subscribe(self, execution_id: str, *, terminal_only: bool = False) -> Subscription:
        """One execution's events from now on (or only its terminal one)."""

    def subscribe_all(self) -> Subscription:
        """Every execution's events from now on."""


class _PubSubSubscription:
    def __init__(self, pubsub: redis.client.PubSub, reconnected: threading.Event) -> None:
        self.pubsub = pubsub
        self.reconnected = reconnected

    def get(self, timeout_s: float) -> str | None:
        end = time.monotonic() + timeout_s
        while (left := end - time.monotonic()) > 0:
            message = self.pubsub.get_message(timeout=left)
            if self.reconnected.is_set():
                self.reconnected.clear()
                raise EventsMissed("the subscription was lost and made again")
            if message is not None and message["type"] in ("message", "pmessage"):
                return _text(message["data"])
        return None

    def close(self) -> None:
        self.pubsub.close()


class RedisEventSource:
    """A pub/sub connection per subscription."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def subscribe(self, execution_id: str, *, terminal_only: bool = False) -> Subscription:
        """Subscribe and wait for Redis to confirm."""
        channel = keys.done_channel if terminal_only else keys.events_channel
        pubsub = self.client.pubsub()  # type: ignore[no-untyped-call]
        reconnected = _watch_reconnects(pubsub)
        try:
            pubsub.subscribe(channel(execution_id))
            _confirmed(pubsub)
        except BaseException:
            pubsub.close()
            raise
        reconnected.clear()
        return _PubSubSubscription(pubsub, reconnected)

    def subscribe_all(self) -> Subscription:
        """Pattern-subscribe to every execution's events channel."""
        pubsub = self.client.pubsub()  # type: ignore[no-untyped-call]
        reconnected = _watch_reconnects(pubsub)
        try:
            pubsub.psubscribe(keys.events_channel("*"))
            _confirmed(pubsub)
        except BaseException:
            pubsub.close()
            raise
        reconnected.clear()
        return _PubSubSubscription(pubsub, reconnected)


def as_event_source(source: EventSource | redis.Redis) -> EventSource:
    """An event source, given one or a Redis client (callers that hold only a client)."""
    if isinstance(source, redis.Redis):
        return RedisEventSource(source)
    return source


def _confirmed(pubsub: redis.client.PubSub) -> None:
    deadline = time.monotonic() + CONFIRM_TIMEOUT_S
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=deadline - time.monotonic())
        if message is not None and message["type"] in ("subscribe", "psubscribe"):
            return
    raise redis.TimeoutError("Redis did not confirm the subscription")


def _text(data: Any) -> str:
    return data.decode() if isinstance(data, bytes) else str(data)


class _LocalSubscription:
    """One subscriber of the fan-out: a bounded queue its listener thread fills."""

    def __init__(self, source: FanOutEventSource, terminal_only: bool) -> None:
        self.source = source
        self.terminal_only = terminal_only
        self.messages: deque[str] = deque(maxlen=SUBSCRIBER_BACKLOG)
        self.failure: Exception | None = None
        self.missed = False
        self.ready = threading.Condition()
        self.listener: _Listener | None = None  # the connection it hears through

    def deliver(self, payload: str) -> None:
        if self.terminal_only and not _terminal(payload):
            return
        with self.ready:
            self.messages.append(payload)
            self.ready.notify()

    def mark_missed(self) -> None:
        with self.ready:
            self.missed = True
            self.ready.notify()

    def fail(self, exc: Exception) -> None:
        with self.ready:
            self.failure = exc
            self.ready.notify()

    def get(self, timeout_s: float) -> str | None:
        with self.ready:
            self.ready.wait_for(
                lambda: self.messages or self.missed or self.failure, timeout=timeout_s
            )
            if self.missed:
                self.missed = False
                raise EventsMissed("the shared subscription was lost and made again")
            if self.messages:
                return self.messages.popleft()
            if self.failure is not None:
                raise self.failure
            return None

    def close(self) -> None:
        self.source.unsubscribe(self)


def _terminal(payload: str) -> bool:
    try:
        kind = json.loads(payload).get("type", "")
    except (ValueError, AttributeError):
        return False
    return kind in _TERMINAL


class FanOutEventSource:
    """One pattern subscription (every execution's events channel) read by one thread, which
    hands each message to the subscribers of its execution. A connection redis-py makes again
    raises EventsMissed once in every subscriber (each reads the gap from the event log); one
    lost for good fails them all, and the next subscribe connects anew."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._lock = threading.Lock()
        self._channels: dict[str, weakref.WeakSet[_LocalSubscription]] = {}
        self._everything: weakref.WeakSet[_LocalSubscription] = weakref.WeakSet()
        self._listener: _Listener | None = None

    def subscribe(self, execution_id: str, *, terminal_only: bool = False) -> Subscription:
        """A subscriber of one execution (listening already when this returns)."""
        subscription = _LocalSubscription(self, terminal_only)
        with self._lock:
            subscription.listener = self._ensure_listening()
            channel = keys.events_channel(execution_id)
            self._channels.setdefault(channel, weakref.WeakSet()).add(subscription)
        return subscription

    def subscribe_all(self) -> Subscription:
        """A subscriber of every execution."""
        subscription = _LocalSubscription(self, terminal_only=False)
        with self._lock:
            subscription.listener = self._ensure_listening()
            self._everything.add(subscription)
        return subscription

    def unsubscribe(self, subscription: _LocalSubscription) -> None:
        """Forget a subscriber."""
        with self._lock:
            self._everything.discard(subscription)
            for channel, subscribers in list(self._channels.items()):
                subscribers.discard(subscription)
                if not subscribers:
                    del self._channels[channel]

    @property
    def subscribers(self) -> int:
        """How many subscriptions are open (for tests and metrics)."""
        with self._lock:
            return len(self._everything) + sum(len(s) for s in self._channels.values())

    def close(self) -> None:
        """Stop the listener thread."""
        with self._lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.stop()

    def _ensure_listening(self) -> _Listener:
        if self._listener is None or not self._listener.alive:
            self._listener = _Listener(self)
        return self._listener

    def _route(self, channel: str, payload: str) -> None:
        with self._lock:
            targets = [*self._channels.get(channel, ()), *self._everything]
        for subscription in targets:
            subscription.deliver(payload)

    def _missed(self, listener: _Listener) -> None:
        with self._lock:
            everyone = [*self._everything, *(s for subs in self._channels.values() for s in subs)]
        for subscription in everyone:
            if subscription.listener is listener:
                subscription.mark_missed()

    def _lost(self, listener: _Listener, exc: Exception) -> None:
        with self._lock:
            everyone = [*self._everything, *(s for subs in self._channels.values() for s in subs)]
            if self._listener is listener:
                self._listener = None
        for subscription in everyone:
            if subscription.listener is listener:  # not one a newer connection serves
                subscription.fail(exc)
                self.unsubscribe(subscription)


class _Listener:
    """The fan-out's pub/sub connection and its reading thread; started confirmed."""

    def __init__(self, source: FanOutEventSource) -> None:
        self.source = source
        self.pubsub = source.client.pubsub()  # type: ignore[no-untyped-call]
        self.reconnected = _watch_reconnects(self.pubsub)
        self._stop = threading.Event()
        try:
            self.pubsub.psubscribe(keys.events_channel("*"))
            _confirmed(self.pubsub)
        except BaseException:
            self.pubsub.close()
            raise
        self.reconnected.clear()
        self.thread = threading.Thread(target=self._run, name="conductor-events", daemon=True)
        self.thread.start()

    @property
    def alive(self) -> bool:
        return self.thread.is_alive() and not self._stop.is_set()

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=FAN_OUT_WAKE_S * 5)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                message = self.pubsub.get_message(timeout=FAN_OUT_WAKE_S)
                if self.reconnected.is_set():  # redis-py subscribed again: tell everyone
                    self.reconnected.clear()
                    self.source._missed(self)
                if message is not None and message["type"] == "pmessage":
                    self.source._route(_text(message["channel"]), _text(message["data"]))
        except Exception as exc:  # the connection is gone: every subscriber hears of it
            self._stop.set()
            self.source._lost(self, exc)
        finally:
            self.pubsub.close()
