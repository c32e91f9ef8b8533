"""Fresh, empty history stores for the benchmark (a SQLite file, a PostgreSQL schema), and
how many bytes each holds."""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import sqlalchemy as sa
from psycopg import sql

from storage.history import HistoryStore, open_history


@dataclass(frozen=True)
class Backend:
    """Where fresh stores go: SQLite files in a folder, or schemas in a PostgreSQL database."""

    name: str
    sqlite_dir: Path | None = None
    postgres_url: str | None = None


@dataclass(frozen=True)
class Footprint:
    """What a store's executions take on disk, in bytes."""

    backend: str
    how: str  # how the live store was filled
    executions: int
    grown: int  # size growth since the store was empty
    sizes: dict[str, int]  # by table or index
    payload: dict[str, int] | None  # SQLite: the rows' own bytes, by table or index

    def per_execution(self, value: float) -> float:
        """`value` divided by the executions stored."""
        return value / self.executions


@dataclass(frozen=True)
class FreshStore:
    """An open, empty history store and what measuring its size needs."""

    store: HistoryStore
    sqlite_path: Path | None = None
    postgres_url: str | None = None
    schema: str | None = None

    def size_bytes(self) -> int:
        """Bytes on disk: the SQLite file (and WAL) after a truncating WAL checkpoint, or the
        schema's relations."""
        if self.sqlite_path is not None:
            return sqlite_file_bytes(self.sqlite_path)
        return sum(self.sizes().values())

    def footprint(self, backend: str, how: str, empty_bytes: int, executions: int) -> Footprint:
        """The store's growth since it held `empty_bytes`, for `executions` executions."""
        grown = self.size_bytes() - empty_bytes
        payload = None if self.sqlite_path is None else sqlite_payload_bytes(self.sqlite_path)
        return Footprint(backend, how, executions, grown, self.sizes(), payload)

    def sizes(self) -> dict[str, int]:
        """Bytes by table and index (SQLite: dbstat pages; PostgreSQL: table with its indexes
        and TOAST)."""
        if self.sqlite_path is not None:
            return sqlite_sizes(self.sqlite_path)
        assert self.postgres_url is not None and self.schema is not None
        return postgres_sizes(self.postgres_url, self.schema)


@contextlib.contextmanager
def fresh_store(backend: Backend, label: str) -> Iterator[FreshStore]:
    """A new, empty store on `backend`, closed (and its PostgreSQL schema dropped) after."""
    if backend.sqlite_dir is not None:
        path = backend.sqlite_dir / f"{label}-{uuid.uuid4().hex[:8]}.sqlite3"
        store = open_history(f"sqlite:///{path}")
        try:
            yield FreshStore(store, sqlite_path=path)
        finally:
            store.close()
        return
    assert backend.postgres_url is not None
    with postgres_schema(backend.postgres_url) as (url, schema):
        store = open_history(url)
        try:
            yield FreshStore(store, postgres_url=backend.postgres_url, schema=schema)
        finally:
            store.close()


@contextlib.contextmanager
def postgres_schema(url: str) -> Iterator[tuple[str, str]]:
    """A new schema; yields a URL whose search_path is that schema, and its name."""
    schema = f"conductor_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(libpq_url(url), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    scoped = sa.make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield scoped.render_as_string(hide_password=False), schema
    finally:
        with psycopg.connect(libpq_url(url), autocommit=True) as admin:
            admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def libpq_url(url: str) -> str:
    """The URL psycopg itself accepts (no SQLAlchemy driver suffix)."""
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def postgres_version(url: str) -> str:
    """The server's version."""
    with psycopg.connect(libpq_url(url)) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"


def checkpoint(path: Path) -> None:
    """Move the WAL into the database file and truncate the WAL to nothing."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    if busy:
        raise RuntimeError(f"{path}: WAL checkpoint blocked by a reader")


def sqlite_file_bytes(path: Path) -> int:
    """The database file plus its WAL, after a checkpoint that truncates the WAL."""
    checkpoint(path)
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def sqlite_sizes(path: Path) -> dict[str, int]:
    """Bytes of pages per table and index, from the dbstat virtual table, after a checkpoint."""
    checkpoint(path)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        rows = conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall()
    return {str(name): int(size) for name, size in rows}


def sqlite_payload_bytes(path: Path) -> dict[str, int]:
    """Bytes of row content (keys and values, without page and cell overhead) per table and
    index, from dbstat."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        rows = conn.execute("SELECT name, SUM(payload) FROM dbstat GROUP BY name").fetchall()
    return {str(name): int(size) for name, size in rows}


def postgres_sizes(url: str, schema: str) -> dict[str, int]:
    """pg_total_relation_size of every table in `schema` (its indexes and TOAST included)."""
    query = (
        "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r'"
    )
    with psycopg.connect(libpq_url(url)) as conn:
        rows = conn.execute(query, (schema,)).fetchall()
    return {str(name): int(size) for name, size in rows}
