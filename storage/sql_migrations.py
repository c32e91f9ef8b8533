"""Upgrading an existing history database in place to the schema this code writes."""

from __future__ import annotations

import sqlalchemy as sa

from storage.sql_schema import SCHEMA_VERSION, UPGRADABLE_VERSIONS, metadata, schema_version


class CannotUpgrade(Exception):
    """The database's schema cannot be upgraded by this code."""


def upgrade(conn: sa.Connection, found: int) -> None:
    """Bring a database at version `found` to SCHEMA_VERSION, in the caller's transaction.
    Every change so far adds tables (create_all made them) or nullable columns."""
    if found not in UPGRADABLE_VERSIONS:
        raise CannotUpgrade(
            f"history schema version {found} in the database; this code knows {SCHEMA_VERSION}"
        )
    add_missing_columns(conn)
    conn.execute(schema_version.update().values(version=SCHEMA_VERSION))


def add_missing_columns(conn: sa.Connection) -> list[str]:
    """ALTER TABLE ... ADD COLUMN for each nullable column the tables lack; return them."""
    inspector = sa.inspect(conn)
    added = []
    for table in metadata.sorted_tables:
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            if not column.nullable:
                raise CannotUpgrade(f"cannot add NOT NULL column {table.name}.{column.name}")
            kind = column.type.compile(dialect=conn.dialect)
            # Names and types are this module's own constants, never user input.
            conn.execute(sa.text(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}"))
            added.append(f"{table.name}.{column.name}")
    return added
