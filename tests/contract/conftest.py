"""Fixtures for contract tests: each history-store test runs on every backend, each
state-store test on the in-memory twin and on Redis.

Backends: SQLite in memory (the fast twin), a SQLite file, and PostgreSQL at
CONDUCTOR_TEST_POSTGRES_URL, where each test gets a fresh schema (via search_path) that is
dropped afterwards. No PostgreSQL server: those tests skip, or fail when CI=true.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis
import sqlalchemy as sa
from psycopg import sql

from conductor.embedded import RedisServer
from storage import keys
from storage.memory_state import MemoryStateStore
from storage.redis_state import RedisStateStore
from storage.sql_history import SqlHistoryStore, open_sql_history
from storage.state import StateStore
from tests.ci import in_ci

STATE_LEASE_MS = 300

POSTGRES_URL = os.environ.get(
    "CONDUCTOR_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def _libpq_url(url: str) -> str:
    """The URL psycopg itself accepts (no SQLAlchemy driver suffix)."""
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@functools.cache
def _postgres_problem() -> str | None:
    """Why PostgreSQL cannot be used, or None when it answers."""
    try:
        with psycopg.connect(_libpq_url(POSTGRES_URL), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as error:
        return f"no PostgreSQL at {sa.make_url(POSTGRES_URL)}: {error}"
    return None


def _require_postgres() -> None:
    problem = _postgres_problem()
    if problem is None:
        return
    if in_ci():
        pytest.fail(problem)
    pytest.skip(problem)


@pytest.fixture
def postgres_schema_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped after the test."""
    _require_postgres()
    schema = f"conductor_test_{uuid.uuid4().hex}"
    admin_url = _libpq_url(POSTGRES_URL)
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    url = sa.make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture(params=["sqlite-memory", "sqlite-file", "postgresql"])
def history_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty history database on each backend."""
    if request.param == "sqlite-memory":
        return "sqlite://"
    if request.param == "sqlite-file":
        return f"sqlite:///{tmp_path / 'history' / 'history.sqlite3'}"
    url: str = request.getfixturevalue("postgres_schema_url")
    return url


@pytest.fixture
def store(history_url: str) -> Iterator[SqlHistoryStore]:
    """An open history store on each backend."""
    opened = open_sql_history(history_url)
    yield opened
    opened.close()


@pytest.fixture(params=["memory", "redis"])
def state_store(request: pytest.FixtureRequest) -> Iterator[StateStore]:
    """Each state store (the in-memory twin, and Redis on the session's private server) with
    leases of STATE_LEASE_MS, so a lapse is quick to wait for."""
    if request.param == "memory":
        yield MemoryStateStore(lease_ms=STATE_LEASE_MS)
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    client = redis.Redis.from_url(server.url)
    yield RedisStateStore(client, lease_ms=STATE_LEASE_MS)
    # no worker's reconciler (e2e tests share the server) is to repair these executions
    live: list[bytes] = client.zrange(keys.LIVE_EXECUTIONS, 0, -1)  # type: ignore[assignment]
    ours = [key for key in live if key.startswith(b"contract-")]
    if ours:
        client.zrem(keys.LIVE_EXECUTIONS, *ours)
    client.close()
