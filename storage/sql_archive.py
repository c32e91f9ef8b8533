"""What history keeps for replay, on SQL: Blueprints by digest and node outputs (see
storage/sql_history.py, which runs these in its transactions)."""

from __future__ import annotations

from collections.abc import Mapping

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from storage.sql_schema import blueprints, executions, node_outputs


def keep_blueprints(conn: sa.Connection, texts: Mapping[str, str]) -> None:
    """Insert the Blueprints not kept yet."""
    if not texts:
        return
    rows = [{"digest": digest, "body": text} for digest, text in sorted(texts.items())]
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    conn.execute(insert(blueprints).on_conflict_do_nothing(index_elements=["digest"]), rows)


def blueprint(conn: sa.Connection, digest: str) -> str | None:
    """A kept Blueprint's text."""
    query = sa.select(blueprints.c.body).where(blueprints.c.digest == digest)
    found: str | None = conn.execute(query).scalar_one_or_none()
    return found


def keep_outputs(conn: sa.Connection, outputs: Mapping[str, Mapping[str, str]]) -> None:
    """Replace each execution's outputs (none are kept for an execution history lacks). The
    executions are locked in id order, as the recorder's `record` locks them."""
    if not outputs:
        return
    wanted = sorted(outputs)
    known_query = (
        sa.select(executions.c.id)
        .where(executions.c.id.in_(wanted))
        .order_by(executions.c.id)
        .with_for_update()
    )
    known = list(conn.execute(known_query).scalars())
    if not known:
        return
    conn.execute(node_outputs.delete().where(node_outputs.c.execution_id.in_(known)))
    rows = [
        {"execution_id": execution_id, "node_id": key, "output": text}
        for execution_id in known
        for key, text in sorted(outputs[execution_id].items())
    ]
    if rows:
        conn.execute(node_outputs.insert(), rows)


def outputs(conn: sa.Connection, execution_id: str) -> dict[str, str]:
    """The execution's kept outputs."""
    query = sa.select(node_outputs.c.node_id, node_outputs.c.output).where(
        node_outputs.c.execution_id == execution_id
    )
    return {node_id: text for node_id, text in conn.execute(query)}


def forget(conn: sa.Connection, execution_ids: list[str]) -> None:
    """Delete these executions' outputs (before the executions themselves)."""
    conn.execute(node_outputs.delete().where(node_outputs.c.execution_id.in_(execution_ids)))


def drop_unused_blueprints(conn: sa.Connection) -> None:
    """Delete the Blueprints no kept execution was submitted with."""
    used = sa.select(executions.c.blueprint_hash).where(executions.c.blueprint_hash.is_not(None))
    conn.execute(blueprints.delete().where(blueprints.c.digest.not_in(used)))
