"""The one Redis client policy: every connection has timeouts, health checks and a short
bounded retry, and a process never opens more than `max_connections` (a request waits up to
`POOL_WAIT_S` for one, then fails as Redis being unreachable does)."""

from __future__ import annotations

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

CONNECT_TIMEOUT_S = 5.0
SOCKET_TIMEOUT_S = 30.0  # above the recorder's 1 s blocking reads; no half-open hang
HEALTH_CHECK_INTERVAL_S = 30
RETRIES = 2  # on a lost connection or a timeout, after 50 ms then up to 500 ms
MAX_CONNECTIONS = 64
POOL_WAIT_S = 10.0

# The client type, for callers above storage/ that hand a client on (they never use it).
Redis = redis.Redis
# What a caller above storage/ catches as "Redis did not answer" (a 503, a retry later).
StoreError = redis.RedisError
TRANSPORT_ERRORS: tuple[type[Exception], ...] = (redis.ConnectionError, redis.TimeoutError)


def redis_client(
    url: str, *, max_connections: int = MAX_CONNECTIONS, name: str | None = None
) -> redis.Redis:
    """A client on a blocking pool of at most `max_connections` connections, each named
    `name` in Redis's CLIENT LIST when given."""
    pool = redis.BlockingConnectionPool.from_url(
        url,
        client_name=name,
        max_connections=max_connections,
        timeout=POOL_WAIT_S,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        socket_timeout=SOCKET_TIMEOUT_S,
        health_check_interval=HEALTH_CHECK_INTERVAL_S,
        retry=Retry(ExponentialWithJitterBackoff(cap=0.5, base=0.05), RETRIES),
    )
    return redis.Redis(connection_pool=pool)


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
