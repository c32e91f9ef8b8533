"""The execution-history store on SQLite or PostgreSQL (SQLAlchemy Core).

`record` runs one transaction in three steps: lock the batch's executions in id order (an upsert
creates placeholders for executions not seen yet), insert the events skipping known ids, then
merge only the newly stored events into the execution and node-run rows. Every writer locks its
executions first and in the same order, so concurrent recorders neither deadlock nor apply an
event twice. On SQLite, write transactions start with BEGIN IMMEDIATE for the same reason.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.pool import StaticPool

from storage import sql_archive, sql_rows
from storage.events import Event
from storage.history import (
    ExecutionRecord,
    HistoryError,
    NodeRunRecord,
    Page,
    SchemaMismatch,
)
from storage.history_state import ExecutionState, NodeRunState, node_run_order, node_targets
from storage.sql_migrations import CannotUpgrade, upgrade
from storage.sql_schema import (
    SCHEMA_VERSION,
    events,
    executions,
    metadata,
    node_outputs,
    node_runs,
    schema_version,
)
from storage.state import ExecutionStatus, NodeStatus

T = TypeVar("T")

MAX_PAGE = 1000
SQLITE_BUSY_TIMEOUT_MS = 30_000
_CHUNK = 500  # rows per statement, well inside SQLite's and PostgreSQL's bound-parameter limits
_WRITE = "conductor_write"  # execution option: this SQLite transaction will write
_SCHEMA_LOCK_KEY = 0x636F6E64  # PostgreSQL advisory lock held while creating tables


def open_sql_history(url: str) -> SqlHistoryStore:
    """Open (creating tables if missing) the history store at `sqlite:///path`, `sqlite://`
    (in memory) or `postgresql://...` (driven by psycopg)."""
    parsed = sa.make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        engine = _sqlite_engine(parsed)
    elif backend in {"postgresql", "postgres"}:
        if parsed.drivername in {"postgresql", "postgres"}:
            parsed = parsed.set(drivername="postgresql+psycopg")
        engine = sa.create_engine(parsed, pool_pre_ping=True)
    else:
        raise HistoryError(f"unsupported history URL {parsed.render_as_string()!r}")
    store = SqlHistoryStore(engine, serialized=isinstance(engine.pool, StaticPool))
    try:
        store.create_schema()
    except BaseException:
        store.close()
        raise
    return store


def _sqlite_engine(url: sa.URL) -> sa.Engine:
    memory = url.database in {None, "", ":memory:"}
    if memory:
        engine = sa.create_engine(
            "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
    else:
        Path(str(url.database)).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False})
    sa.event.listen(engine, "connect", _sqlite_connect)
    sa.event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Leave BEGIN to _sqlite_begin: pysqlite's own would always be a deferred one.
    dbapi_connection.isolation_level = None
    for pragma in (
        "journal_mode=WAL",
        "synchronous=NORMAL",
        "foreign_keys=ON",
        f"busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
    ):
        dbapi_connection.execute(f"PRAGMA {pragma}").close()


def _sqlite_begin(connection: sa.Connection) -> None:
    # A deferred transaction that later writes can fail at once with SQLITE_BUSY (another writer
    # committed since it read); IMMEDIATE takes the write lock up front, waiting busy_timeout.
    immediate = connection.get_execution_options().get(_WRITE, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class SqlHistoryStore:
    """HistoryStore on a SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: sa.Engine, serialized: bool = False) -> None:
        self.engine = engine
        # An in-memory SQLite database is one shared connection: one user at a time.
        self._serial: contextlib.AbstractContextManager[Any] = (
            threading.RLock() if serialized else contextlib.nullcontext()
        )

    def create_schema(self) -> None:
        """Create missing tables and check the schema version."""
        with self._transaction(write=True) as conn:
            if conn.dialect.name == "postgresql":
                # Two processes opening a new database at once would both CREATE TABLE.
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_SCHEMA_LOCK_KEY)))
            metadata.create_all(conn)
            found = conn.execute(sa.select(schema_version.c.version)).scalars().all()
            if not found:
                conn.execute(schema_version.insert().values(version=SCHEMA_VERSION))
            elif found != [SCHEMA_VERSION]:
                try:  # an older database is upgraded in place, in this transaction
                    upgrade(conn, found[0] if len(found) == 1 else -1)
                except CannotUpgrade as exc:
                    raise SchemaMismatch(str(exc)) from None

    def record(self, events: Sequence[Event]) -> int:
        """Store the events not stored yet and merge them into the records, atomically."""
        unique = list({event.id: event for event in reversed(events)}.values())
        if not unique:
            return 0
        with self._transaction(write=True) as conn:
            states = self._lock_executions(conn, unique)
            stored = self._insert_events(conn, unique)
            if stored:
                self._merge(conn, states, [event for event in unique if event.id in stored])
        return len(stored)

    def execution(self, execution_id: str) -> ExecutionRecord | None:
        """One execution, or None."""
        query = sa.select(executions).where(executions.c.id == execution_id)
        with self._transaction() as conn:
            row = conn.execute(query).one_or_none()
        return None if row is None else sql_rows.execution_state(row).record

    def node_runs(self, execution_id: str) -> list[NodeRunRecord]:
        """An execution's node runs, by started_at (never started last), then node_id."""
        query = sa.select(node_runs).where(node_runs.c.execution_id == execution_id)
        with self._transaction() as conn:
            rows = conn.execute(query).all()
        return sorted((sql_rows.node_state(row).record for row in rows), key=node_run_order)

    def events(
        self, execution_id: str, after_seq: int = 0, limit: int | None = None
    ) -> list[Event]:
        """An execution's events with seq > after_seq, in seq order."""
        query = (
            sa.select(events)
            .where(events.c.execution_id == execution_id, events.c.seq > after_seq)
            .order_by(events.c.seq, events.c.id)
            .limit(limit)
        )
        with self._transaction() as conn:
            rows = conn.execute(query).all()
        return [sql_rows.event(row) for row in rows]

    def list_executions(
        self,
        status: ExecutionStatus | None = None,
        blueprint_id: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[ExecutionRecord]:
        """Executions, newest first, in pages (keyset on created_at, id)."""
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE}, not {limit}")
        key = sa.tuple_(executions.c.created_at, executions.c.id)
        query = sa.select(executions).order_by(
            executions.c.created_at.desc(), executions.c.id.desc()
        )
        if status is not None:
            query = query.where(executions.c.status == status.value)
        if blueprint_id is not None:
            query = query.where(executions.c.blueprint_id == blueprint_id)
        if cursor is not None:
            query = query.where(key < sa.tuple_(*map(sa.literal, sql_rows.decode_cursor(cursor))))
        with self._transaction() as conn:
            rows = conn.execute(query.limit(limit + 1)).all()
        items = [sql_rows.execution_state(row).record for row in rows[:limit]]
        if len(rows) <= limit:
            return Page(items=items)
        last = items[-1]
        return Page(items=items, next_cursor=sql_rows.encode_cursor(last.created_at, last.id))

    def keep_for_replay(
        self, blueprints: Mapping[str, str], outputs: Mapping[str, Mapping[str, str]]
    ) -> None:
        """Blueprints by digest and executions' node outputs, in one transaction."""
        if not blueprints and not outputs:
            return
        with self._transaction(write=True) as conn:
            sql_archive.keep_blueprints(conn, blueprints)
            sql_archive.keep_outputs(conn, outputs)

    def blueprint(self, digest: str) -> str | None:
        """A kept Blueprint's text, or None."""
        with self._transaction() as conn:
            return sql_archive.blueprint(conn, digest)

    def node_outputs(self, execution_id: str) -> dict[str, str]:
        """An execution's kept node outputs (packed), by node key."""
        with self._transaction() as conn:
            return sql_archive.outputs(conn, execution_id)

    def prune(self, older_than_s: float, now: float | None = None) -> int:
        """Delete executions finished before now - older_than_s, with their runs and events."""
        cutoff = (time.time() if now is None else now) - older_than_s
        doomed = (
            sa.select(executions.c.id)
            .where(executions.c.finished_at < cutoff)
            .order_by(executions.c.id)
            .with_for_update()
        )
        deleted = 0
        with self._transaction(write=True) as conn:
            ids = list(conn.execute(doomed).scalars())
            for chunk in _chunks(ids):
                conn.execute(events.delete().where(events.c.execution_id.in_(chunk)))
                sql_archive.forget(conn, list(chunk))
                conn.execute(node_runs.delete().where(node_runs.c.execution_id.in_(chunk)))
                result = conn.execute(executions.delete().where(executions.c.id.in_(chunk)))
                deleted += result.rowcount
            if deleted:
                sql_archive.drop_unused_blueprints(conn)
        return deleted

    def blob_mentions(self) -> list[str]:
        """Results, kept node outputs and event data holding `sha256:` (a blob reference)."""
        marker = "%sha256:%"
        columns = (executions.c.result, node_outputs.c.output, events.c.data)
        found: list[str] = []
        with self._transaction() as conn:
            for column in columns:
                rows = conn.execute(sa.select(column).where(column.like(marker)))
                found += [text for text in rows.scalars() if text]
        return found

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    @contextlib.contextmanager
    def _transaction(self, write: bool = False) -> Iterator[sa.Connection]:
        with self._serial, self.engine.connect() as conn:
            if write:
                conn.execution_options(**{_WRITE: True})
            with conn.begin():
                yield conn

    def _insert(self, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
        if self.engine.dialect.name == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    def _lock_executions(
        self, conn: sa.Connection, batch: list[Event]
    ) -> dict[str, ExecutionState]:
        """Lock (creating placeholders as needed) every execution of the batch, in id order."""
        first_ts: dict[str, float] = {}
        for event in batch:
            first_ts[event.execution_id] = min(first_ts.get(event.execution_id, event.ts), event.ts)
        rows = [
            sql_rows.execution_row(ExecutionState.placeholder(execution_id, ts))
            for execution_id, ts in sorted(first_ts.items())
        ]
        insert = self._insert(executions)
        # A no-op update, so that an existing row is locked and returned like a new one.
        upsert = insert.on_conflict_do_update(
            index_elements=[executions.c.id], set_={"last_seq": executions.c.last_seq}
        ).returning(*executions.c)
        # executemany: SQLAlchemy sends the rows in order, in as few statements as fit.
        states = [sql_rows.execution_state(row) for row in conn.execute(upsert, rows)]
        return {state.record.id: state for state in states}

    def _insert_events(self, conn: sa.Connection, batch: list[Event]) -> set[str]:
        """Insert the events whose ids are new; return those ids."""
        rows = [sql_rows.event_row(event) for event in sorted(batch, key=lambda event: event.id)]
        insert = self._insert(events).on_conflict_do_nothing(index_elements=[events.c.id])
        return set(conn.execute(insert.returning(events.c.id), rows).scalars())

    def _merge(
        self, conn: sa.Connection, states: dict[str, ExecutionState], batch: list[Event]
    ) -> None:
        """Fold newly stored events into their executions and node runs, and write those."""
        before = self._node_states(conn, batch)
        after = dict(before)
        for event in sorted(batch, key=lambda event: (event.execution_id, event.seq, event.id)):
            execution_id = event.execution_id
            states[execution_id] = states[execution_id].apply(event)
            for node_id in node_targets(event):
                key = (execution_id, node_id)
                node = after.get(key) or NodeRunState.empty(execution_id, node_id)
                after[key] = node.apply(event)
        touched = {event.execution_id for event in batch}
        after = {key: state.cancelled_by(states[key[0]]) for key, state in after.items()}
        rows = [sql_rows.execution_row(states[execution_id]) for execution_id in sorted(touched)]
        _update(conn, executions, ["id"], rows)
        self._cancel_open_runs(conn, [states[execution_id] for execution_id in sorted(touched)])
        new = [sql_rows.node_row(state) for key, state in after.items() if key not in before]
        changed = [
            sql_rows.node_row(state)
            for key, state in after.items()
            if key in before and state != before[key]
        ]
        if new:
            conn.execute(node_runs.insert(), new)
        _update(conn, node_runs, ["execution_id", "node_id"], changed)

    def _cancel_open_runs(self, conn: sa.Connection, states: list[ExecutionState]) -> None:
        """Runs still pending or running in a cancelled execution end cancelled."""
        cancelled = [s for s in states if s.record.status is ExecutionStatus.CANCELLED]
        for state in cancelled:
            conn.execute(
                node_runs.update()
                .where(
                    node_runs.c.execution_id == state.record.id,
                    node_runs.c.status.in_(
                        [
                            s.value
                            for s in (NodeStatus.PENDING, NodeStatus.RUNNING, NodeStatus.CANCELLED)
                        ]
                    ),
                    node_runs.c.status_seq < state.status_seq,
                )
                .values(status=NodeStatus.CANCELLED.value, finished_at=state.record.finished_at)
            )

    def _node_states(
        self, conn: sa.Connection, batch: list[Event]
    ) -> dict[tuple[str, str], NodeRunState]:
        """The stored node runs the batch's node events touch."""
        wanted = {
            (event.execution_id, node_id) for event in batch for node_id in node_targets(event)
        }
        found: dict[tuple[str, str], NodeRunState] = {}
        for chunk in _chunks(sorted(wanted)):
            query = sa.select(node_runs).where(
                node_runs.c.execution_id.in_({execution_id for execution_id, _ in chunk}),
                node_runs.c.node_id.in_({node_id for _, node_id in chunk}),
            )
            for row in conn.execute(query):
                state = sql_rows.node_state(row)
                key = (state.record.execution_id, state.record.node_id)
                if key in wanted:
                    found[key] = state
        return found


def _update(
    conn: sa.Connection, table: sa.Table, keys: list[str], rows: list[dict[str, Any]]
) -> None:
    """UPDATE many rows by primary key (executemany)."""
    if not rows:
        return
    where = [table.c[key] == sa.bindparam(f"key_{key}") for key in keys]
    values: dict[str, Any] = {name: sa.bindparam(name) for name in rows[0] if name not in keys}
    params = [{**row, **{f"key_{key}": row[key] for key in keys}} for row in rows]
    conn.execute(table.update().where(*where).values(values), params)


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]
