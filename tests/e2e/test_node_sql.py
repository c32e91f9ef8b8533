"""`sql` on a real worker against SQLite (always), PostgreSQL and MariaDB (skipped locally when
the server does not answer, failing with CI=true): connections come from the worker's
environment, values only as bound parameters."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from conductor.embedded import RedisServer
from nodes.sql import with_driver
from tests.ci import in_ci
from tests.e2e.fault_stack import Stack

pytestmark = pytest.mark.e2e

SERVERS = {
    "pg": os.environ.get(
        "CONDUCTOR_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
    ).replace("postgresql://", "postgresql+psycopg://", 1),
    "maria": os.environ.get("CONDUCTOR_TEST_MARIADB_URL", "mysql://root@127.0.0.1:3306/test"),
}


@pytest.fixture(scope="module")
def sql_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A private Redis and a worker whose environment names three connections."""
    base = tmp_path_factory.mktemp("sql")
    (base / "data" / "files").mkdir(parents=True)
    server = RedisServer(base / "redis").start()
    env = {
        "CONDUCTOR_SQL_LITE_URL": f"sqlite:///{base / 'lite.sqlite3'}",
        "CONDUCTOR_SQL_PG_URL": SERVERS["pg"],
        "CONDUCTOR_SQL_MARIA_URL": SERVERS["maria"],
    }
    stack = Stack(server, base / "data", f"sqlite:///{base / 'history.sqlite3'}", extra_env=env)
    stack.start_worker("sql", concurrency=2)
    try:
        yield stack
    finally:
        stack.stop_all()
        server.stop()


def reachable(connection: str) -> None:
    """Skip (fail in CI) unless the database server answers."""
    if connection == "lite":
        return
    engine = sa.create_engine(with_driver(SERVERS[connection]), poolclass=NullPool)
    try:
        with engine.connect() as db:
            db.exec_driver_sql("SELECT 1")
    except Exception as exc:
        if in_ci():
            pytest.fail(f"{connection}: the database server must answer in CI: {exc}")
        pytest.skip(f"{connection}: no database server ({exc.__class__.__name__})")
    finally:
        engine.dispose()


def run(stack: Stack, text: str, inputs: dict[str, Any] | None = None) -> dict[str, Any]:
    return stack.wait_final(stack.submit(text, inputs), timeout_s=60)


def round_trip(table: str, connection: str) -> str:
    """Create, insert with binds (one value is an injection attempt), read back."""
    return f"""
id: sql-{table}
name: SQL round trip
variables:
  who: {{type: string, defaultValue: "O'Brien'); DROP TABLE {table}; --"}}
nodes:
  - id: create
    type: sql
    parameters: {{connection: {connection}, mode: execute, query: "CREATE TABLE {table} (id INTEGER PRIMARY KEY, name VARCHAR(100), score DECIMAL(10,2))"}}
  - id: insert
    type: sql
    parameters:
      connection: {connection}
      mode: execute
      query: "INSERT INTO {table} (id, name, score) VALUES (1, :a, 1.5), (2, :b, 2), (3, :c, 3.25)"
      params: {{a: "{{{{$vars.who}}}}", b: Bob, c: Cy}}
  - id: rows
    type: sql
    parameters: {{connection: {connection}, query: "SELECT id, name, score FROM {table} WHERE id >= :low ORDER BY id", params: {{low: 1}}, maxRows: 2}}
  - id: count
    type: sql
    parameters: {{connection: {connection}, mode: scalar, query: "SELECT COUNT(*) AS n FROM {table}"}}
edges:
  - {{source: create, target: insert}}
  - {{source: insert, target: rows}}
  - {{source: insert, target: count}}
"""


@pytest.mark.parametrize("connection", ["lite", "pg", "maria"])
def test_round_trip_with_bound_parameters(sql_stack: Stack, connection: str) -> None:
    reachable(connection)
    table = f"conductor_e2e_{uuid.uuid4().hex[:12]}"
    try:
        result = run(sql_stack, round_trip(table, connection))
    finally:
        drop = f"""
id: sql-drop
name: Drop
nodes:
  - {{id: drop, type: sql, parameters: {{connection: {connection}, mode: execute, query: "DROP TABLE IF EXISTS {table}"}}}}
"""
        dropped = run(sql_stack, drop)
    assert result["status"] == "succeeded", result["error"]
    rows = result["data"]["rows"]
    assert rows["columns"] == ["id", "name", "score"]
    assert rows["result"] == [
        {"id": 1, "name": f"O'Brien'); DROP TABLE {table}; --", "score": 1.5},
        {"id": 2, "name": "Bob", "score": 2},
    ]
    assert rows["rowCount"] == 2
    assert rows["truncated"] is True
    assert result["data"]["count"]["result"] == 3
    assert dropped["status"] == "succeeded", dropped["error"]


def test_an_unknown_connection_names_the_variable(sql_stack: Stack) -> None:
    result = run(
        sql_stack,
        """
id: sql-unknown
name: Unknown connection
nodes:
  - {id: q, type: sql, parameters: {connection: warehouse, query: "SELECT 1", retries: 0}}
""",
    )
    assert result["status"] == "failed"
    assert "CONDUCTOR_SQL_WAREHOUSE_URL" in result["error"]["message"]
    assert result["error"]["nodeId"] == "q"


@pytest.mark.parametrize("connection", ["lite", "pg"])
def test_a_query_past_the_timeout_is_stopped(sql_stack: Stack, connection: str) -> None:
    reachable(connection)
    slow = {
        "lite": "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) "
        "SELECT COUNT(*) FROM n",
        "pg": "SELECT pg_sleep(30)",
    }[connection]
    result = run(
        sql_stack,
        f"""
id: sql-slow
name: Slow query
nodes:
  - {{id: q, type: sql, parameters: {{connection: {connection}, mode: scalar, query: "{slow}", timeout: 1000, retries: 0}}}}
""",
    )
    assert result["status"] == "failed"
    assert result["error"]["code"] == "TIMEOUT", result["error"]


def test_scalar_of_no_rows_is_null(sql_stack: Stack) -> None:
    result = run(
        sql_stack,
        """
id: sql-empty
name: Empty scalar
nodes:
  - {id: q, type: sql, parameters: {connection: lite, mode: scalar, query: "SELECT 1 WHERE 1 = :x", params: {x: 2}}}
""",
    )
    assert result["status"] == "succeeded", result["error"]
    assert result["data"]["q"]["result"] is None
