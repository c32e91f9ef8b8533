"""The one Redis client policy: every connection has timeouts, health checks and a short
bounded retry, and a process never opens more than `max_connections` (a request waits up to
`POOL_WAIT_S` for one, then fails as Redis being unreachable does).

A Sentinel URL (`sentinel://host:26379;sentinel://host2:26379`, Celery's and kombu's form)
with a master name gives a client that asks the Sentinels where the primary is on every new
connection, and rides out a failover with a longer bounded retry."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

import redis
from redis.backoff import EqualJitterBackoff, ExponentialWithJitterBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelConnectionPool

from conductor.model.settings import SENTINEL_SCHEME, SettingsError, sentinel_hosts

CONNECT_TIMEOUT_S = 5.0
SOCKET_TIMEOUT_S = 30.0  # above the recorder's 1 s blocking reads; no half-open hang
HEALTH_CHECK_INTERVAL_S = 30
RETRIES = 2  # on a lost connection or a timeout, after 50 ms then up to 500 ms
# Behind Sentinels, 7 retries 0.25 s then up to 2 s apart (about 9 s in all): a primary is
# replaced in down-after-milliseconds plus an election (docs/sentinel.md); a call that
# outlives that fails as an unreachable Redis does.
FAILOVER_RETRIES = 7
MAX_CONNECTIONS = 64
POOL_WAIT_S = 10.0

# The client type, for callers above storage/ that hand a client on (they never use it).
Redis = redis.Redis
# What a caller above storage/ catches as "Redis did not answer" (a 503, a retry later).
StoreError = redis.RedisError
TRANSPORT_ERRORS: tuple[type[Exception], ...] = (redis.ConnectionError, redis.TimeoutError)
# Retried: a lost connection, a timeout, and a write refused by a primary demoted to replica
# (a reconnect finds the new one: Sentinel asks again, a DNS name resolves again).
RETRIED_ERRORS: tuple[type[Exception], ...] = (*TRANSPORT_ERRORS, redis.ReadOnlyError)


def is_sentinel(url: str) -> bool:
    """Whether `url` names Sentinels rather than a Redis."""
    return url.split("://", 1)[0].lower() == SENTINEL_SCHEME


def redis_client(
    url: str,
    *,
    master: str | None = None,
    max_connections: int = MAX_CONNECTIONS,
    name: str | None = None,
) -> redis.Redis:
    """A client on a blocking pool of at most `max_connections` connections, each named
    `name` in Redis's CLIENT LIST when given; of the primary `master` when `url` names
    Sentinels."""
    options: dict[str, Any] = {
        "client_name": name,
        "max_connections": max_connections,
        "timeout": POOL_WAIT_S,
        "socket_connect_timeout": CONNECT_TIMEOUT_S,
        "socket_timeout": SOCKET_TIMEOUT_S,
        "health_check_interval": HEALTH_CHECK_INTERVAL_S,
    }
    if is_sentinel(url):
        failover = Retry(EqualJitterBackoff(cap=2.0, base=0.25), FAILOVER_RETRIES, RETRIED_ERRORS)
        return _sentinel_client(url, master, options, failover)
    retry = Retry(ExponentialWithJitterBackoff(cap=0.5, base=0.05), RETRIES, RETRIED_ERRORS)
    pool = redis.BlockingConnectionPool.from_url(url, retry=retry, **options)
    return redis.Redis(connection_pool=pool)


class SentinelPool(SentinelConnectionPool, redis.BlockingConnectionPool):
    """Sentinel's primary discovery on a bounded, blocking pool."""

    sentinel_manager: Sentinel

    def disconnect(self, inuse_connections: bool = True) -> None:
        """Drop the connections, and on a full close the Sentinels' too."""
        super().disconnect(inuse_connections)
        if inuse_connections:
            self.sentinel_manager.close()


def _sentinel_client(
    url: str, master: str | None, options: dict[str, Any], retry: Retry
) -> redis.Redis:
    """Like Celery: the first URL's user, password and database are the primary's."""
    if not master:
        raise SettingsError("CONDUCTOR_REDIS_MASTER must name the primary of sentinel:// Redis")
    first = urlsplit(url.split(";", 1)[0].strip())
    credentials = {
        "username": unquote(first.username) if first.username else None,
        "password": unquote(first.password) if first.password else None,
        "db": int(first.path.strip("/") or 0),
    }
    # redis.sentinel has no annotations
    sentinels = Sentinel(  # type: ignore[no-untyped-call]
        sentinel_hosts(url),
        sentinel_kwargs={
            "socket_connect_timeout": CONNECT_TIMEOUT_S,
            "socket_timeout": CONNECT_TIMEOUT_S,
        },
    )
    pool = SentinelPool(  # type: ignore[no-untyped-call]
        master, sentinels, retry=retry, **credentials, **options
    )
    return redis.Redis.from_pool(pool)


def ping(client: redis.Redis) -> None:
    """Raise a StoreError unless Redis answers."""
    client.ping()


def answers(url: str) -> bool:
    """Whether a Redis answers at `url` now (one try, no retry: for waiting on a starting
    server)."""
    client = redis.Redis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT_S)
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False
    finally:
        client.close()
