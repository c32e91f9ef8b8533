"""`http-request`: make an HTTP request, with in-node retries and a response size limit."""

# Parameter names follow Atomiton's node (method, url, headers, body, params, auth,
# followRedirects, validateSSL, retryDelay). Atomiton's in-node `retries` is `maxRetries` here,
# because `retries` is the base parameter that re-runs the whole node. A request may use what
# is left of the node's `timeout`; one that runs it out fails with TIMEOUT, not TRANSPORT_ERROR.

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Literal

import httpcore
import httpx
from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator, model_validator

from conductor.model.blob_text import BlobText
from nodes.base import Node, NodeContext, NodeParameters
from nodes.egress import ALLOW_VARIABLE, EgressPolicy, GuardedBackend
from nodes.errors import NodeError, NodeTimeout
from nodes.http_bodies import charset_of, is_text, read_body
from nodes.json_text import parse_json
from nodes.url_masking import install_url_masking, mask_url

Method = Literal["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
QueryValue = str | int | float | bool
DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024
MAX_BACKOFF_S = 30.0
MIN_ATTEMPT_S = 0.25  # a retry needs this much time left after its backoff, or it is not tried
SNIPPET_CHARS = 200
BODYLESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Failures of the connection itself, worth trying again; timeouts mean the node's time is spent.
TRANSIENT_ERRORS = (httpx.NetworkError, httpx.RemoteProtocolError, httpx.ProxyError)


class HttpAuth(BaseModel):
    """Atomiton's `auth`: a bearer token, or basic username and password."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    type: Literal["bearer", "basic"]
    token: str | None = None
    username: str | None = None
    password: str = ""

    @model_validator(mode="after")
    def _has_credentials(self) -> HttpAuth:
        """Bearer needs `token`; basic needs `username`."""
        if self.type == "bearer" and not self.token:
            raise ValueError("auth of type bearer needs a token")
        if self.type == "basic" and not self.username:
            raise ValueError("auth of type basic needs a username")
        return self


class HttpRequestParameters(NodeParameters):
    """Parameters of `http-request`."""

    method: Method = Field(default="GET", description="HTTP method")
    url: str = Field(description="Request URL (http or https)")
    headers: dict[str, str] = Field(default_factory=dict, description="Request headers")
    body: JsonValue = Field(
        default=None, description="A string is sent as text; any other JSON value as JSON"
    )
    contentType: str | None = Field(default=None, description="Content-Type of the body")
    params: dict[str, QueryValue | list[QueryValue]] = Field(
        default_factory=dict, description="Query parameters appended to the URL"
    )
    auth: HttpAuth | None = Field(default=None, description="Bearer or basic authentication")
    followRedirects: bool = True
    validateSSL: bool = True
    maxRetries: int = Field(default=2, ge=0, le=10, description="In-node retries on 5xx/network")
    retryDelay: int = Field(default=1000, ge=100, le=10_000, description="First backoff, ms")
    failOnError: bool = Field(default=True, description="A 4xx/5xx response fails the node")
    maxResponseBytes: int = Field(default=DEFAULT_MAX_RESPONSE_BYTES, ge=1)

    @field_validator("headers", mode="before")
    @classmethod
    def _headers_from_json(cls, value: Any) -> Any:
        """Atomiton also takes `headers` as a JSON object in a string (`body` stays text)."""
        if not isinstance(value, str):
            return value
        try:
            decoded = parse_json(value)
        except ValueError as exc:
            raise ValueError(f"headers is a string but not a JSON object: {exc}") from None
        if not isinstance(decoded, dict):
            raise ValueError("headers is a string but not a JSON object")
        return decoded

    @field_validator("method", mode="before")
    @classmethod
    def _upper_method(cls, value: Any) -> Any:
        """Accept `get` as well as `GET`."""
        return value.upper() if isinstance(value, str) else value

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        """Only absolute http and https URLs. The messages never quote the URL: they reach
        events and history, and a URL that does not parse cannot be masked reliably (httpx
        quotes the part it refused, which may be a piece of the password)."""
        try:
            parsed = httpx.URL(value)
        except httpx.InvalidURL as exc:
            reason = str(exc).split(":", maxsplit=1)[0]
            raise ValueError(f"url is not a valid URL: {reason}") from None
        if parsed.scheme not in ("http", "https"):
            shown = f"the scheme {parsed.scheme!r}" if parsed.scheme else "no scheme"
            raise ValueError(f"url must be an absolute http or https URL, got {shown}")
        if not parsed.host:
            raise ValueError("url must be an absolute http or https URL, got no host")
        return value


@dataclass(frozen=True)
class _Call:
    """What to send, built once and sent on every attempt."""

    method: str
    url: httpx.URL
    headers: httpx.Headers
    content: bytes | None


@dataclass(frozen=True)
class _Reply:
    """A response whose body has been read, within the size limit."""

    response: httpx.Response
    content: bytes  # the start only, when the body is a blob
    blob: BlobText | None = None


class HttpRequestNode(Node[HttpRequestParameters]):
    """Send one HTTP request; retry 5xx and network failures with exponential backoff."""

    type_name = "http-request"
    description = "Make an HTTP request (GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS)"
    parameters_model = HttpRequestParameters

    def run(self, params: HttpRequestParameters, context: NodeContext) -> Mapping[str, Any]:
        install_url_masking()  # httpx logs each request's URL
        call = _build_call(params)
        started = time.monotonic()
        with _client(params, context) as client:
            reply = _send(client, call, params, context)
        duration_ms = round((time.monotonic() - started) * 1000)
        if reply.response.is_error and params.failOnError:
            raise _status_error(call, reply)
        return _output(reply, call, duration_ms)


@contextmanager
def _client(params: HttpRequestParameters, context: NodeContext) -> Iterator[httpx.Client]:
    """A client for this one node run, connecting only where the egress policy allows (no
    proxy from the environment: the policy must see the address really connected to)."""
    try:
        policy = EgressPolicy.parse(context.environment.http_allow)
    except ValueError as exc:
        raise NodeError(f"{ALLOW_VARIABLE}: {exc}", retryable=False) from None
    transport = httpx.HTTPTransport(verify=params.validateSSL)  # SSL_CERT_FILE still applies
    pool = transport._pool  # httpcore's pool: its network backend makes the connections
    assert isinstance(pool, httpcore.ConnectionPool)
    pool._network_backend = GuardedBackend(policy, pool._network_backend)
    with httpx.Client(
        follow_redirects=params.followRedirects, transport=transport, trust_env=False
    ) as client:
        yield client


def _build_call(params: HttpRequestParameters) -> _Call:
    """Headers, auth and body as they go on the wire."""
    headers = httpx.Headers(params.headers)
    content = None if params.method in BODYLESS_METHODS else _encode_body(params.body, headers)
    if params.contentType is not None and content is not None:
        headers["Content-Type"] = params.contentType
    if params.auth is not None:
        headers["Authorization"] = _authorization(params.auth)
    return _Call(params.method, _with_query(params), headers, content)


def _with_query(params: HttpRequestParameters) -> httpx.URL:
    """The URL with `params` appended to its own query (httpx would replace that query)."""
    url = httpx.URL(params.url)
    return url.copy_merge_params(params.params) if params.params else url


def _encode_body(body: JsonValue, headers: httpx.Headers) -> bytes | None:
    """A string as UTF-8 text, anything else as JSON; sets Content-Type unless already set."""
    if body is None:
        return None
    if isinstance(body, str):
        headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        return body.encode()
    headers.setdefault("Content-Type", "application/json")
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def _authorization(auth: HttpAuth) -> str:
    """The Authorization header value for `auth`."""
    if auth.type == "bearer":
        return f"Bearer {auth.token}"
    pair = f"{auth.username}:{auth.password}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


def _send(
    client: httpx.Client, call: _Call, params: HttpRequestParameters, context: NodeContext
) -> _Reply:
    """Send, retrying 5xx and network failures while attempts and the deadline allow."""
    outcome = _attempt(client, call, params, context)
    attempts = 1
    while _transient(outcome) and attempts <= params.maxRetries:
        delay_s = _backoff_s(params.retryDelay, attempts)
        if delay_s + MIN_ATTEMPT_S >= context.remaining_s():
            break  # never sleep past the node's deadline
        time.sleep(delay_s)
        outcome = _attempt(client, call, params, context)
        attempts += 1
    if isinstance(outcome, _Reply):
        return outcome
    message = f"{call.method} {_safe_url(call.url)} failed after {attempts} attempt(s): "
    raise NodeError(message + _describe(outcome), code="TRANSPORT_ERROR", retryable=True)


def _attempt(
    client: httpx.Client, call: _Call, params: HttpRequestParameters, context: NodeContext
) -> _Reply | httpx.TransportError:
    """One request: its reply, or the transient transport error to retry."""
    timeout_s = context.remaining_s()
    if timeout_s <= 0:
        raise _timeout(call, params)
    request = client.build_request(
        call.method,
        call.url,
        headers=call.headers,
        content=call.content,
        timeout=timeout_s,
    )
    try:
        response = client.send(request, stream=True)
        try:
            return _Reply(response, *_read_limited(response, call, params, context))
        finally:
            response.close()
    except httpx.TimeoutException:
        raise _timeout(call, params) from None
    except TRANSIENT_ERRORS as exc:
        return exc
    except httpx.RequestError as exc:  # bad redirect, invalid header, undecodable body...
        message = f"{call.method} {_safe_url(call.url)} failed: {_describe(exc)}"
        raise NodeError(message, retryable=False) from exc


def _read_limited(
    response: httpx.Response, call: _Call, params: HttpRequestParameters, context: NodeContext
) -> tuple[bytes, BlobText | None]:
    """The body, refused once past `maxResponseBytes`; the deadline is checked per chunk. A
    large one that is not JSON goes to the blob store as it arrives (then the bytes are its
    start)."""
    limit = params.maxResponseBytes
    declared = response.headers.get("Content-Length", "")
    if call.method != "HEAD" and declared.isdigit() and int(declared) > limit:
        raise _too_large(call, limit, f"Content-Length is {declared}")
    checked = _checked(response.iter_bytes(), call, params, context)
    content_type = response.headers.get("Content-Type", "")
    return read_body(checked, content_type, context.environment)


def _checked(
    chunks: Iterator[bytes], call: _Call, params: HttpRequestParameters, context: NodeContext
) -> Iterator[bytes]:
    """The chunks, stopped past `maxResponseBytes` or the deadline."""
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > params.maxResponseBytes:
            raise _too_large(call, params.maxResponseBytes, "the body kept coming")
        if context.remaining_s() <= 0:
            raise _timeout(call, params)
        yield chunk


def _transient(outcome: _Reply | httpx.TransportError) -> bool:
    """Worth another attempt: a network failure or a 5xx response."""
    return not isinstance(outcome, _Reply) or outcome.response.is_server_error


def _backoff_s(retry_delay_ms: int, attempt: int) -> float:
    """`retryDelay`, doubled after each attempt, capped."""
    return float(min(retry_delay_ms / 1000 * 2 ** (attempt - 1), MAX_BACKOFF_S))


def _output(reply: _Reply, call: _Call, duration_ms: int) -> dict[str, Any]:
    """Atomiton's output fields (`url` is the URL asked for), plus `finalUrl` (after
    redirects) and `duration_ms`; both URLs with user info and query values masked."""
    response = reply.response
    data = reply.blob or _parse_body(reply.content, response.headers.get("Content-Type", ""))
    return {
        "result": data,
        "data": data,
        "status": response.status_code,
        "statusText": _status_text(response),
        "headers": dict(response.headers),
        "ok": response.is_success,
        "success": response.is_success,
        "url": mask_url(str(call.url)),
        "finalUrl": mask_url(str(response.url)),
        "duration": duration_ms,
        "duration_ms": duration_ms,
    }


def _parse_body(content: bytes, content_type: str) -> Any:
    """JSON parsed, text as text, anything else as base64 (as Atomiton does)."""
    kind = content_type.split(";", maxsplit=1)[0].strip().lower()
    if not content:
        return ""
    if kind == "application/json" or kind.endswith("+json"):
        try:
            return parse_json(content)
        except ValueError:
            pass  # a server that lies about JSON: hand back the text
    if is_text(kind):
        return content.decode(charset_of(content_type), errors="replace")
    return base64.b64encode(content).decode("ascii")


def _status_text(response: httpx.Response) -> str:
    """The reason phrase, or the standard one when the server sent none (HTTP/2)."""
    if response.reason_phrase:
        return response.reason_phrase
    try:
        return HTTPStatus(response.status_code).phrase
    except ValueError:
        return ""


def _status_error(call: _Call, reply: _Reply) -> NodeError:
    """A 4xx/5xx as a node error; 429 and 5xx may pass with the node's base `retries`."""
    status = reply.response.status_code
    snippet = _snippet(reply)
    message = f"{call.method} {_safe_url(call.url)} returned HTTP {status} "
    message += f"{_status_text(reply.response)}" + (f": {snippet}" if snippet else "")
    if status == HTTPStatus.TOO_MANY_REQUESTS:
        return NodeError(message, code="RATE_LIMIT_EXCEEDED", retryable=True)
    return NodeError(message, retryable=reply.response.is_server_error)


def _snippet(reply: _Reply) -> str:
    """The start of the body, on one line."""
    text = reply.content[: SNIPPET_CHARS * 4].decode("utf-8", errors="replace")
    text = " ".join(text.split())
    return text if len(text) <= SNIPPET_CHARS else text[:SNIPPET_CHARS] + "…"


def _timeout(call: _Call, params: HttpRequestParameters) -> NodeTimeout:
    """The node's `timeout` ran out during the request."""
    where = f"{call.method} {_safe_url(call.url)}"
    return NodeTimeout(f"{where} timed out: the node's timeout of {params.timeout} ms ran out")


def _too_large(call: _Call, limit: int, why: str) -> NodeError:
    """A response body over `maxResponseBytes`; a retry would not shrink it."""
    where = f"{call.method} {_safe_url(call.url)}"
    message = f"{where}: response body is larger than maxResponseBytes ({limit} bytes); {why}"
    return NodeError(message, retryable=False)


def _safe_url(url: httpx.URL) -> str:
    """The URL for messages: no user info, no query (either may hold secrets)."""
    return str(url.copy_with(userinfo=b"", query=None, fragment=None))


def _describe(exc: Exception) -> str:
    """An exception's type and message, for error messages."""
    text = str(exc) or "no detail"
    return f"{type(exc).__name__}: {text}"
