"""A history database the CLI cannot use is one line naming CONDUCTOR_HISTORY_URL, exit 3."""

from __future__ import annotations

from pathlib import Path

import pytest

from conductor.exit_codes import EXIT_UNREACHABLE
from conductor.failures import describe_failure
from storage.history import SchemaMismatch
from storage.sql_history import open_sql_history


def test_a_newer_schema_names_the_variable() -> None:
    message, code = describe_failure(SchemaMismatch("history schema version 9 in the database"))
    assert code == EXIT_UNREACHABLE
    assert "CONDUCTOR_HISTORY_URL" in message and "version 9" in message
    assert "internal error" not in message


def test_a_file_that_is_not_a_database_names_the_variable(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_text("not a database\n" * 100)
    with pytest.raises(Exception) as raised:
        open_sql_history(f"sqlite:///{junk}")
    message, code = describe_failure(raised.value)
    assert code == EXIT_UNREACHABLE
    assert "CONDUCTOR_HISTORY_URL" in message and "not a database" in message
