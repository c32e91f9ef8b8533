"""Bringing an existing history database up to the tables this code declares.

Columns added after a database was created are nullable (a run recorded before has no value
for them), so the migration is one `ALTER TABLE ... ADD COLUMN` per missing column, on SQLite
and PostgreSQL alike. It runs in `create_schema`'s transaction, under its lock: idempotent, and
an older Conductor reading the database still finds every column it knows.
"""

from __future__ import annotations

import sqlalchemy as sa

from storage.sql_schema import metadata


def add_missing_columns(conn: sa.Connection) -> list[str]:
    """Add the declared columns an existing table lacks; the `table.column` names added."""
    inspector = sa.inspect(conn)
    added: list[str] = []
    for table in metadata.sorted_tables:
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            if not column.nullable or column.primary_key:  # pragma: no cover - a schema bug
                raise ValueError(f"{table.name}.{column.name} must be nullable to be added")
            kind = column.type.compile(dialect=conn.dialect)
            preparer = conn.dialect.identifier_preparer
            conn.execute(
                sa.text(
                    f"ALTER TABLE {preparer.format_table(table)} "
                    f"ADD COLUMN {preparer.format_column(column)} {kind}"
                )
            )
            added.append(f"{table.name}.{column.name}")
    return added
