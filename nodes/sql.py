"""`sql`: one parameterised query on a named connection, through SQLAlchemy.

The connection's URL comes from the worker's environment (`CONDUCTOR_SQL_<NAME>_URL`), never
from the Blueprint; values reach the query only as bound parameters (`:name` in the text).
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import re
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import Field, JsonValue, field_validator
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from nodes.base import Node, NodeContext, NodeParameters
from nodes.errors import InvalidParameters, NodeError, NodeTimeout

CONNECTION_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
DEFAULT_MAX_ROWS = 1000
MAX_ROWS = 100_000


class SqlParameters(NodeParameters):
    """Parameters of `sql`."""

    connection: str = Field(
        description="Connection name: the worker reads its URL from CONDUCTOR_SQL_<NAME>_URL"
    )
    query: str = Field(min_length=1, description="One SQL statement; values as :name binds")
    params: dict[str, JsonValue] = Field(
        default_factory=dict, description="Bound parameters for the :name placeholders"
    )
    mode: Literal["rows", "scalar", "execute"] = Field(
        default="rows",
        description="rows: the rows as mappings; scalar: the first column of the first row; "
        "execute: the number of rows affected",
    )
    maxRows: int = Field(
        default=DEFAULT_MAX_ROWS, ge=1, le=MAX_ROWS, description="At most this many rows"
    )

    @field_validator("connection")
    @classmethod
    def _connection_name(cls, value: str) -> str:
        if not CONNECTION_NAME.fullmatch(value):
            raise ValueError("a connection name is letters, digits and _, starting with a letter")
        return value


def connection_variable(name: str) -> str:
    """The environment variable holding connection `name`'s URL."""
    return f"CONDUCTOR_SQL_{name.upper()}_URL"


def connection_url(name: str, env: Mapping[str, str] | None = None) -> str:
    """Connection `name`'s URL from the worker's environment; unknown names name the variable."""
    variable = connection_variable(name)
    url = (os.environ if env is None else env).get(variable)
    if not url:
        raise NodeError(
            f"unknown SQL connection {name!r}: set {variable} in the worker's environment",
            code="INVALID_PARAMETERS",
            retryable=False,
        )
    return url


# Drivers Conductor ships, for URLs that name none (SQLAlchemy's own defaults are not installed).
DEFAULT_DRIVERS = {"mysql": "mysql+pymysql", "mariadb": "mariadb+pymysql"}


def with_driver(url: str) -> sa.URL:
    """`url` with the shipped driver when it names none (`mysql://` -> `mysql+pymysql://`)."""
    parsed = sa.make_url(url)
    return parsed.set(drivername=DEFAULT_DRIVERS.get(parsed.drivername, parsed.drivername))


class SqlNode(Node[SqlParameters]):
    """Run `query` with `params` bound; the output's `result` depends on `mode`."""

    type_name = "sql"
    description = "Run a parameterised SQL query on a named connection (SQLAlchemy)"
    parameters_model = SqlParameters
    # The statement and where it runs are fixed in the Blueprint; values travel as binds.
    literal_parameters = frozenset({"connection", "query", "mode"})
    variable_parts_hint = "pass variable values as bound params"

    def run(self, params: SqlParameters, context: NodeContext) -> Mapping[str, Any]:
        url = connection_url(params.connection)
        try:
            engine = sa.create_engine(with_driver(url), poolclass=NullPool)
        except (sa.exc.ArgumentError, ImportError, ValueError) as exc:  # ValueError: a bad port
            raise InvalidParameters(
                f"{connection_variable(params.connection)} is not a usable database URL: {exc}"
            ) from None
        try:
            with _transaction(engine, context.remaining_s()) as connection:
                return _execute(connection, params)
        except sa.exc.DBAPIError as exc:
            raise _failure(exc, params.connection) from None
        except sa.exc.StatementError as exc:  # a bind the query does not have, or the reverse
            raise InvalidParameters(f"the query's parameters do not fit: {exc.orig}") from None
        finally:
            engine.dispose()


@contextmanager
def _transaction(engine: sa.Engine, remaining_s: float) -> Iterator[Connection]:
    """A transaction whose statements stop when the node's time is up."""
    deadline = time.monotonic() + remaining_s
    with engine.begin() as connection:
        _limit_time(connection, deadline)
        yield connection


def _limit_time(connection: Connection, deadline: float) -> None:
    """The server stops the statement at the node's deadline (SQLite: between VM steps)."""
    left_ms = max(1, int((deadline - time.monotonic()) * 1000))
    dialect = connection.dialect.name
    if dialect == "postgresql":
        connection.exec_driver_sql(f"SET LOCAL statement_timeout = {left_ms}")
    elif getattr(connection.dialect, "is_mariadb", False):
        connection.exec_driver_sql(f"SET SESSION max_statement_time = {left_ms / 1000:.3f}")
    elif dialect == "mysql":  # MySQL limits SELECTs only
        connection.exec_driver_sql(f"SET SESSION max_execution_time = {left_ms}")
    elif dialect == "sqlite":
        raw = connection.connection.driver_connection
        raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 1000)  # type: ignore[union-attr]


def _execute(connection: Connection, params: SqlParameters) -> dict[str, Any]:
    result = connection.execute(sa.text(params.query), params.params)
    if params.mode == "execute" or not result.returns_rows:
        return {"result": result.rowcount, "rowCount": result.rowcount}
    columns = list(result.keys())
    if params.mode == "scalar":
        row = result.first()
        return {"result": None if row is None else _json(row[0]), "columns": columns}
    fetched = result.fetchmany(params.maxRows + 1)
    rows = [{key: _json(value) for key, value in row._mapping.items()} for row in fetched]
    truncated = len(rows) > params.maxRows
    rows = rows[: params.maxRows]
    return {"result": rows, "columns": columns, "rowCount": len(rows), "truncated": truncated}


def _json(value: Any) -> Any:
    """A database value as JSON: decimals stay numbers when a float holds them exactly."""
    if isinstance(value, Decimal):
        return _decimal(value)
    if isinstance(value, dt.date | dt.time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _decimal(value: Decimal) -> int | float | str:
    if value == value.to_integral_value():
        return int(value)
    return float(value) if Decimal(repr(float(value))) == value else str(value)


# Messages of a statement stopped at the node's deadline, by driver.
_TIMEOUT_MARKERS = ("statement timeout", "interrupted", "max_statement_time", "maximum statement")


def _failure(exc: sa.exc.DBAPIError, connection: str) -> NodeError:
    message = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
    if any(marker in message.lower() for marker in _TIMEOUT_MARKERS):
        return NodeTimeout(f"the query ran past the node's timeout: {message}")
    # A failed statement fails the same way again; a lost connection may not.
    return NodeError(
        f"SQL on {connection!r} failed: {message}", retryable=exc.connection_invalidated
    )
