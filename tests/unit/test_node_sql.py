"""The sql node run directly on SQLite (no worker): modes, the row limit, binds, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nodes.base import NodeContext
from nodes.errors import NodeError
from nodes.sql import SqlNode, SqlParameters, connection_url, with_driver


@pytest.fixture
def lite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CONDUCTOR_SQL_LITE_URL", f"sqlite:///{tmp_path / 'db.sqlite3'}")
    run("execute", "CREATE TABLE t (id INTEGER, name TEXT)")
    return "lite"


def run(mode: str, query: str, **params: Any) -> dict[str, Any]:
    parameters = SqlParameters(connection="lite", query=query, mode=mode, **params)  # type: ignore[arg-type]
    return dict(SqlNode().run(parameters, NodeContext("e", "n", {})))


def test_modes_binds_and_the_row_limit(lite: str) -> None:
    inserted = run(
        "execute", "INSERT INTO t VALUES (1, :a), (2, :b), (3, :c)",
        params={"a": "x'); DROP TABLE t; --", "b": "y", "c": "z"},
    )  # fmt: skip
    assert inserted == {"result": 3, "rowCount": 3}
    rows = run("rows", "SELECT id, name FROM t ORDER BY id", maxRows=2)
    assert rows == {
        "result": [{"id": 1, "name": "x'); DROP TABLE t; --"}, {"id": 2, "name": "y"}],
        "columns": ["id", "name"], "rowCount": 2, "truncated": True,
    }  # fmt: skip
    assert run("scalar", "SELECT COUNT(*) FROM t")["result"] == 3
    assert run("scalar", "SELECT id FROM t WHERE id > 9")["result"] is None


def test_a_missing_bind_and_a_bad_statement_fail_without_retry(lite: str) -> None:
    with pytest.raises(NodeError, match="parameters do not fit") as missing:
        run("rows", "SELECT * FROM t WHERE id = :id")
    assert missing.value.code == "INVALID_PARAMETERS"
    with pytest.raises(NodeError, match="no such table") as bad:
        run("rows", "SELECT * FROM nowhere")
    assert not bad.value.retryable


def test_an_unknown_connection_names_its_variable() -> None:
    with pytest.raises(NodeError, match="CONDUCTOR_SQL_SALES_URL"):
        connection_url("sales", {})
    with pytest.raises(ValueError, match="connection name"):
        SqlParameters(connection="no-dashes", query="SELECT 1")


def test_urls_without_a_driver_get_the_shipped_one() -> None:
    assert with_driver("mysql://root@h/db").drivername == "mysql+pymysql"
    assert with_driver("mariadb://root@h/db").drivername == "mariadb+pymysql"
    assert with_driver("postgresql+psycopg://u@h/db").drivername == "postgresql+psycopg"


def test_a_malformed_url_names_its_variable_not_its_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONDUCTOR_SQL_LITE_URL", "postgresql://app:pa55word@db:port/sales")
    with pytest.raises(NodeError, match="CONDUCTOR_SQL_LITE_URL is not a usable") as bad:
        run("rows", "SELECT 1")
    assert bad.value.code == "INVALID_PARAMETERS"
    assert not bad.value.retryable
    assert "pa55word" not in str(bad.value)
