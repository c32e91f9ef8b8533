"""/v1/ws: one WebSocket follows many executions' events (as SSE does) and controls them."""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
from anyio import CapacityLimiter
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from conductor.api.context import ApiContext
from conductor.api.guard import bearer_matches
from conductor.api.ws_limits import WsLimits
from conductor.api.ws_messages import (
    CONTROL_OPS,
    BadMessage,
    Message,
    after_of,
    error_message,
    execution_id_of,
    parse_message,
    ref_of,
    with_ref,
)
from conductor.control import Control, ControlOutcome
from conductor.event_stream import ExecutionNotFound, follow_events
from conductor.model.loader import blueprint_from_data
from conductor.model.problems import InvalidBlueprint
from conductor.submission import IdempotencyConflict
from storage.blueprints import BlueprintNotFound
from storage.event_source import EventsMissed, Subscription
from storage.events import Event
from storage.redis_client import StoreError

router = APIRouter(tags=["websocket"])

# A follower thread wakes this often when nothing happens, so an unsubscribe (or a closed
# connection) frees its thread and Redis connection within about this long.
WAKE_S = 1.0
AUTH_TIMEOUT_S = 10.0
CLOSE_POLICY = 1008  # unauthorized, too many subscriptions
CLOSE_TRY_LATER = 1013  # too many connections
CLOSE_IDLE = 1001  # going away: idle, following nothing

T = TypeVar("T")


@dataclass
class WsState:
    """The app's WebSocket bookkeeping: open connections, and the follower threads' own
    limiter (sized for every subscription at once, so followers never take the threads HTTP
    requests run on)."""

    limits: WsLimits
    threads: CapacityLimiter
    open: int = 0


def install(app_state: Any, limits: WsLimits | None = None) -> None:
    """Set up the connection counter on the app's state."""
    limits = limits or WsLimits.from_env()
    # One more thread per connection: a control, submit or lookup runs beside its followers.
    app_state.ws = WsState(limits, CapacityLimiter(limits.connections * (limits.subscriptions + 1)))


@router.websocket("/v1/ws")
async def websocket(ws: WebSocket) -> None:
    """Subscribe to executions' events, control and submit them (see the app description)."""
    state: WsState = ws.app.state.ws
    await ws.accept()
    if state.open >= state.limits.connections:
        reason = f"too many connections (max {state.limits.connections}), retry later"
        await ws.close(CLOSE_TRY_LATER, reason)
        return
    state.open += 1
    session = Session(ws, ws.app.state.context, state)
    try:
        if await session.authenticate():
            await session.serve()
    except WebSocketDisconnect:
        pass
    finally:
        state.open -= 1
        await session.stop()


class Session:
    """One connection: its subscriptions, and one sender at a time."""

    def __init__(self, ws: WebSocket, ctx: ApiContext, state: WsState) -> None:
        self.ws = ws
        self.ctx = ctx
        self.limits = state.limits
        self.threads = state.threads
        self.followers: dict[str, asyncio.Task[None]] = {}
        self.send_lock = asyncio.Lock()

    async def _thread(self, function: Callable[[Any], T], argument: Any) -> T:
        """Run blocking Redis work on the WebSocket threads."""
        return await anyio.to_thread.run_sync(function, argument, limiter=self.threads)

    async def send(self, message: Message) -> None:
        """Send one message (followers send concurrently: frames must not interleave)."""
        async with self.send_lock:
            await self.ws.send_json(message)

    async def authenticate(self) -> bool:
        """True when no token is needed, the header carries it, or the first message does."""
        token = self.ctx.settings.api_token
        if not token:
            return True
        given = self.ws.headers.get("authorization", "")
        if bearer_matches(given, token):
            return True
        try:
            with anyio.fail_after(AUTH_TIMEOUT_S):
                first = await self.ws.receive_text()
            message = json.loads(first)
        except TimeoutError:
            message = None
        except json.JSONDecodeError:
            message = None
        supplied = message.get("token") if isinstance(message, dict) else None
        if not (
            isinstance(message, dict)
            and message.get("op") == "auth"
            and isinstance(supplied, str)
            and hmac.compare_digest(supplied.encode(), token.encode())
        ):
            reason = 'unauthorized: send {"op": "auth", "token": ...} first, or Authorization'
            await self.ws.close(CLOSE_POLICY, reason)
            return False
        await self.send({"type": "authenticated"})
        return True

    async def serve(self) -> None:
        """Act on each message until the client leaves or breaks a limit."""
        while True:
            idle_s = None if self.followers else self.limits.idle_s
            try:
                text = await asyncio.wait_for(self.ws.receive_text(), idle_s)
            except TimeoutError:  # holds a connection slot and follows nothing
                await self.ws.close(CLOSE_IDLE, f"idle for {idle_s} s with no subscription")
                return
            try:
                message = parse_message(text)
                if not await self.handle(message):
                    return
            except BadMessage as exc:
                await self.send(error_message("BAD_MESSAGE", str(exc), ref_of(text)))

    async def handle(self, message: Message) -> bool:
        """Act on one message; False when the connection was closed."""
        op = message["op"]
        ref = message.get("ref")
        if op == "subscribe":
            return await self.subscribe(execution_id_of(message), after_of(message), ref)
        if op == "unsubscribe":
            await self.unsubscribe(execution_id_of(message), ref)
        elif op == "subscribe_all":
            return await self.subscribe_all(ref)
        elif op in CONTROL_OPS:
            await self.control(op, execution_id_of(message), ref)
        elif op == "submit":
            await self.submit(message, ref)
        elif op == "auth":
            await self.send({"type": "authenticated", **with_ref(ref)})
        else:
            raise BadMessage(
                f"op: unknown op {op!r} (subscribe, unsubscribe, subscribe_all, submit, "
                f"{', '.join(CONTROL_OPS)})"
            )
        return True

    async def subscribe(self, execution_id: str, after: int, ref: Any) -> bool:
        """Follow an execution's events after `after`; False when over the limit (closed)."""
        if execution_id in self.followers:
            await self.send(
                error_message(
                    "CONFLICT", f"already subscribed to {execution_id!r}", ref, execution_id
                )
            )
            return True
        if len(self.followers) >= self.limits.subscriptions:
            reason = f"too many subscriptions (max {self.limits.subscriptions} per connection)"
            await self.ws.close(CLOSE_POLICY, reason)
            return False
        if not await self._thread(self._known, execution_id):
            await self.send(
                error_message("NOT_FOUND", f"no execution {execution_id!r}", ref, execution_id)
            )
            return True
        try:
            stream = await self._thread(self._follow, (execution_id, after))
        except ExecutionNotFound:
            await self.send(
                error_message("NOT_FOUND", f"no execution {execution_id!r}", ref, execution_id)
            )
            return True
        except StoreError as exc:
            message = f"Redis is unreachable, subscribe again with after: {exc}"
            await self.send(error_message("TRANSPORT_ERROR", message, ref, execution_id))
            return True
        await self.send(
            {"type": "subscribed", "execution_id": execution_id, "after": after, **with_ref(ref)}
        )
        self.followers[execution_id] = asyncio.create_task(self._pump(execution_id, stream))
        return True

    def _follow(self, subject: tuple[str, int]) -> Iterator[Event | None]:
        execution_id, after = subject
        return follow_events(
            self.ctx.events,
            self.ctx.stores.state,
            self.ctx.history,
            execution_id,
            after_seq=after,
            heartbeat_s=WAKE_S,
        )

    def _known(self, execution_id: str) -> bool:
        if self.ctx.stores.state.snapshot(execution_id, []).execution is not None:
            return True
        return self.ctx.history.execution(execution_id) is not None

    async def _pump(self, execution_id: str, stream: Iterator[Event | None]) -> None:
        """Forward the stream's events until the terminal one (or until cancelled)."""
        me = asyncio.current_task()
        try:
            while (item := await self._thread(_next, stream)) is not _END:
                if isinstance(item, Event):
                    await self.send({"type": "event", "event": item.model_dump(mode="json")})
        except ExecutionNotFound:
            await self.send(
                error_message("NOT_FOUND", f"no execution {execution_id!r}", None, execution_id)
            )
        except StoreError as exc:  # say so: a silent end would look like a quiet run
            message = f"Redis is unreachable, subscribe again with after: {exc}"
            await self.send(error_message("TRANSPORT_ERROR", message, None, execution_id))
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass  # the connection went away while sending: the session cleans up
        finally:
            await self._thread(_close, stream)  # not running: safe to close
            if self.followers.get(execution_id) is me:
                del self.followers[execution_id]

    async def unsubscribe(self, execution_id: str, ref: Any) -> None:
        """Stop following an execution (a no-op when not subscribed)."""
        task = self.followers.pop(execution_id, None)
        if task is not None:
            task.cancel()
        await self.send({"type": "unsubscribed", "execution_id": execution_id, **with_ref(ref)})

    async def subscribe_all(self, ref: Any) -> bool:
        """Every execution's execution.* events from now on (for lists of executions)."""
        if "*" in self.followers:
            await self.send(error_message("CONFLICT", "already subscribed to all executions", ref))
            return True
        if len(self.followers) >= self.limits.subscriptions:
            reason = f"too many subscriptions (max {self.limits.subscriptions} per connection)"
            await self.ws.close(CLOSE_POLICY, reason)
            return False
        stream = await self._thread(_all_executions, self.ctx)
        await self.send({"type": "subscribed", "execution_id": "*", **with_ref(ref)})
        self.followers["*"] = asyncio.create_task(self._pump("*", stream))
        return True

    async def control(self, op: str, execution_id: str, ref: Any) -> None:
        """cancel, pause, resume, retry or step, as POST /v1/executions/{id}/{op} does."""
        control = Control(self.ctx.dispatcher)
        action: Callable[[str], ControlOutcome] = getattr(control, op)
        outcome = await self._thread(action, execution_id)
        if outcome is ControlOutcome.NOT_FOUND:
            message = f"no live execution {execution_id!r}"
            await self.send(error_message("NOT_FOUND", message, ref, execution_id))
            return
        status = await self._thread(self._status, execution_id)
        if outcome is ControlOutcome.CONFLICT:
            message = f"cannot {op} an execution that is {status}"
            await self.send(error_message("CONFLICT", message, ref, execution_id))
            return
        reply = {"type": "control", "op": op, "execution_id": execution_id, "status": status}
        await self.send({**reply, **with_ref(ref)})

    def _status(self, execution_id: str) -> str:
        meta = self.ctx.stores.state.snapshot(execution_id, []).execution
        return meta.status.value if meta is not None else "unknown"

    async def submit(self, message: Message, ref: Any) -> None:
        """Start an execution, as POST /v1/executions does."""
        try:
            reply = await self._thread(self._submit, message)
        except BadMessage:
            raise
        except InvalidBlueprint as exc:
            errors = [
                {"path": p.path, "code": p.code.value, "message": p.message} for p in exc.problems
            ]
            problem = error_message("VALIDATION_FAILED", f"the Blueprint is invalid: {exc}", ref)
            await self.send({**problem, "errors": errors})
            return
        except BlueprintNotFound:
            name = message.get("blueprint_id")
            await self.send(error_message("NOT_FOUND", f"no stored Blueprint {name!r}", ref))
            return
        except IdempotencyConflict as exc:
            await self.send(error_message("IDEMPOTENCY_CONFLICT", str(exc), ref))
            return
        await self.send({**reply, **with_ref(ref)})

    def _submit(self, message: Message) -> Message:
        blueprint, blueprint_id = message.get("blueprint"), message.get("blueprint_id")
        if (blueprint is None) == (blueprint_id is None):
            raise BadMessage("submit: give exactly one of blueprint and blueprint_id")
        inputs = message.get("inputs", {})
        if not isinstance(inputs, dict):
            raise BadMessage("inputs: must be an object")
        if blueprint is not None and not isinstance(blueprint, dict):
            raise BadMessage("blueprint: must be an object")
        if blueprint_id is not None and not isinstance(blueprint_id, str):
            raise BadMessage("blueprint_id: must be a string")
        key = message.get("idempotency_key")
        submitted = self.ctx.submitter.submit(
            blueprint_from_data(blueprint) if blueprint is not None else None,
            blueprint_id=blueprint_id,
            inputs=inputs,
            idempotency_key=key if isinstance(key, str) else None,
        )
        reply: Message = {
            "type": "submitted",
            "execution_id": submitted.execution_id,
            "status": submitted.status,
        }
        if submitted.idle_queues:
            reply["warnings"] = [queue.message for queue in submitted.idle_queues]
        return reply

    async def stop(self) -> None:
        """Cancel every follower and wait for their threads to let go."""
        tasks = list(self.followers.values())
        self.followers.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


_END = object()


def _next(stream: Iterator[Event | None]) -> object:
    return next(stream, _END)


def _close(stream: Iterator[Event | None]) -> None:
    close = getattr(stream, "close", None)
    if close is not None:
        close()


def _all_executions(ctx: ApiContext) -> Iterator[Event | None]:
    """Every execution's execution.* events from now on (None: nothing for a while). The
    subscription is made here, not at the first `next`, so "subscribed" means listening."""
    return _published(ctx.events.subscribe_all())


def _published(subscription: Subscription) -> Iterator[Event | None]:
    try:
        while True:
            try:
                payload = subscription.get(WAKE_S)
            except EventsMissed:  # a list view: what was missed is in each execution's view
                continue
            if payload is None:
                yield None
                continue
            event = Event.model_validate_json(payload)
            if event.node_id is None:
                yield event
    finally:
        subscription.close()
