"""What history keeps for replay (Blueprints by digest, node outputs, replay_of) on every
backend, and the in-place upgrade of a version-1 database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from storage.events import Event, EventType
from storage.history import ExecutionRecord, SchemaMismatch
from storage.sql_history import SqlHistoryStore, open_sql_history
from storage.sql_schema import SCHEMA_VERSION, blueprints, metadata, node_outputs
from storage.state import ExecutionStatus

T0 = 1_700_000_000.0
NEW_COLUMNS = {"blueprint_hash", "replay_of", "parent_id", "parent_node"}


def _event(execution_id: str, seq: int, kind: EventType, **data: object) -> Event:
    return Event(
        id=str(uuid.uuid4()), execution_id=execution_id, seq=seq, type=kind, ts=T0 + seq, data=data
    )


def _finished(store: SqlHistoryStore, digest: str | None, replay_of: str | None = None) -> str:
    execution_id = str(uuid.uuid4())
    links = {"blueprint_hash": digest, "replay_of": replay_of}
    queued = _event(
        execution_id,
        1,
        EventType.EXECUTION_QUEUED,
        blueprint_id="bp",
        blueprint_name="BP",
        blueprint_version=None,
        inputs={"word": "one"},
        nodes=2,
        **{key: value for key, value in links.items() if value},
    )
    ended = _event(
        execution_id,
        2,
        EventType.EXECUTION_SUCCEEDED,
        status="succeeded",
        error=None,
        duration_ms=5,
        result={},
        cancelled=[],
    )
    store.record([queued, ended])
    return execution_id


def test_the_blueprint_digest_and_replay_of_are_recorded(store: SqlHistoryStore) -> None:
    original = _finished(store, "d1")
    replay = _finished(store, "d1", replay_of=original)

    first = store.execution(original)
    second = store.execution(replay)
    assert first is not None and second is not None
    assert (first.blueprint_hash, first.replay_of) == ("d1", None)
    assert (second.blueprint_hash, second.replay_of) == ("d1", original)
    assert second.status is ExecutionStatus.SUCCEEDED


def test_blueprints_are_kept_once_by_digest(store: SqlHistoryStore) -> None:
    store.keep_for_replay({"d1": '{"id": "a"}', "d2": '{"id": "b"}'}, {})
    store.keep_for_replay({"d1": "ignored: the first text stands"}, {})
    store.keep_for_replay({}, {})

    assert store.blueprint("d1") == '{"id": "a"}'
    assert store.blueprint("d2") == '{"id": "b"}'
    assert store.blueprint("d3") is None


def test_node_outputs_are_replaced_whole_and_only_for_known_executions(
    store: SqlHistoryStore,
) -> None:
    execution_id = _finished(store, None)
    other = _finished(store, None)

    store.keep_for_replay({}, {execution_id: {"a": '{"result": 1}', "b": '{"result": 2}'}})
    # a retry's ending replaces the outputs whole; an execution history lacks keeps none
    store.keep_for_replay(
        {}, {execution_id: {"a": '{"result": 3}'}, "unknown": {"a": "{}"}, other: {"z": "1"}}
    )

    assert store.node_outputs(execution_id) == {"a": '{"result": 3}'}
    assert store.node_outputs(other) == {"z": "1"}
    assert store.node_outputs("unknown") == {}


def test_prune_drops_outputs_and_the_blueprints_no_execution_uses(store: SqlHistoryStore) -> None:
    gone = _finished(store, "old")
    kept = _finished(store, "shared")
    store.keep_for_replay({"old": "{}", "shared": "{}"}, {gone: {"a": "{}"}, kept: {"a": "{}"}})
    with store.engine.begin() as conn:  # only `gone` finished long ago
        conn.execute(
            sa.text("UPDATE executions SET finished_at = :ts WHERE id = :id"),
            {"ts": T0 - 10_000, "id": gone},
        )
        conn.execute(
            sa.text("UPDATE executions SET finished_at = :ts WHERE id = :id"),
            {"ts": T0 + 10_000, "id": kept},
        )

    assert store.prune(older_than_s=3600, now=T0 + 5000) == 1

    assert store.node_outputs(gone) == {}
    assert store.node_outputs(kept) == {"a": "{}"}
    assert store.blueprint("old") is None
    assert store.blueprint("shared") == "{}"


# ---- upgrading a version-1 database in place ------------------------------------------------


@pytest.fixture(params=["sqlite-file", "postgresql"])
def old_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with the version-1 schema (no blueprints or node_outputs tables, no
    blueprint_hash or replay_of column) holding one execution."""
    if request.param == "sqlite-file":
        url = f"sqlite:///{tmp_path / 'history.sqlite3'}"
    else:
        url = request.getfixturevalue("postgres_schema_url")
    old = sa.MetaData()
    for table in metadata.sorted_tables:
        if table.name in {blueprints.name, node_outputs.name}:
            continue
        columns = [column._copy() for column in table.columns if column.name not in NEW_COLUMNS]
        sa.Table(table.name, old, *columns)
    engine = sa.create_engine(sa.make_url(url).set(drivername=_driver(url)))
    with engine.begin() as conn:
        old.create_all(conn)
        conn.execute(old.tables["schema_version"].insert().values(version=1))
        conn.execute(
            old.tables["executions"]
            .insert()
            .values(
                id="e1",
                blueprint_id="bp",
                blueprint_name="BP",
                status="succeeded",
                status_seq=2,
                inputs="{}",
                created_at=T0,
                last_seq=2,
            )
        )
    engine.dispose()
    yield url


def _driver(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgresql+psycopg"


def test_a_version_1_database_is_upgraded_in_place(old_url: str) -> None:
    store = open_sql_history(old_url)
    try:
        with store.engine.connect() as conn:
            versions = conn.execute(sa.text("SELECT version FROM schema_version")).scalars().all()
            columns = {c["name"] for c in sa.inspect(conn).get_columns("executions")}
        assert versions == [SCHEMA_VERSION] == [4]
        assert columns >= NEW_COLUMNS
        record = store.execution("e1")
        assert isinstance(record, ExecutionRecord)
        assert (record.blueprint_id, record.blueprint_hash, record.replay_of) == ("bp", None, None)
        store.keep_for_replay({}, {"e1": {"a": "{}"}})
        assert store.node_outputs("e1") == {"a": "{}"}
    finally:
        store.close()
    again = open_sql_history(old_url)  # a second opening finds version 3: nothing to do
    again.close()


def test_a_database_of_an_unknown_version_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'history.sqlite3'}"
    open_sql_history(url).close()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE schema_version SET version = 99"))
    engine.dispose()

    with pytest.raises(SchemaMismatch, match="version 99"):
        open_sql_history(url)
