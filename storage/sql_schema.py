"""The execution-history tables (SQLAlchemy Core), for SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa

SCHEMA_VERSION = 4
# Older versions this code upgrades in place (storage/sql_migrations.py): 1 lacked the
# Blueprint digest, replay_of, and the blueprints and node_outputs tables; 2 lacked the node
# runs' profile columns; 3 lacked a child execution's parent_id and parent_node.
UPGRADABLE_VERSIONS = frozenset({1, 2, 3})

metadata = sa.MetaData()

executions = sa.Table(
    "executions",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("blueprint_id", sa.Text, nullable=False),
    sa.Column("blueprint_name", sa.Text, nullable=False),
    sa.Column("blueprint_version", sa.Text),
    sa.Column("blueprint_hash", sa.Text),  # -> blueprints.digest: the Blueprint as submitted
    sa.Column("replay_of", sa.Text),  # the execution this one replays
    sa.Column("parent_id", sa.Text),  # a child execution's parent (docs/children.md)
    sa.Column("parent_node", sa.Text),  # and the `blueprint` node there that runs it
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("status_seq", sa.Integer, nullable=False),
    sa.Column("inputs", sa.Text, nullable=False),
    sa.Column("result", sa.Text),
    sa.Column("error", sa.Text),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("started_at", sa.Double),
    sa.Column("finished_at", sa.Double),
    sa.Column("duration_ms", sa.BigInteger),
    sa.Column("last_seq", sa.Integer, nullable=False),
    sa.Index("ix_executions_created", "created_at", "id"),
    sa.Index("ix_executions_status_created", "status", "created_at", "id"),
    sa.Index("ix_executions_blueprint_created", "blueprint_id", "created_at", "id"),
    sa.Index("ix_executions_finished", "finished_at"),
)

_EXECUTION_FK = sa.ForeignKey("executions.id", ondelete="CASCADE")

node_runs = sa.Table(
    "node_runs",
    metadata,
    sa.Column("execution_id", sa.Text, _EXECUTION_FK, primary_key=True),
    sa.Column("node_id", sa.Text, primary_key=True),
    sa.Column("type", sa.Text),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("status_seq", sa.Integer, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("worker", sa.Text),
    sa.Column("start_seq", sa.Integer, nullable=False),
    sa.Column("started_at", sa.Double),
    sa.Column("finished_at", sa.Double),
    sa.Column("duration_ms", sa.BigInteger),
    sa.Column("error", sa.Text),
    sa.Column("error_seq", sa.Integer, nullable=False),
    # A run's profile (schema version 3)
    sa.Column("queue_wait_ms", sa.BigInteger),
    sa.Column("cpu_ms", sa.BigInteger),
    sa.Column("peak_rss_bytes", sa.BigInteger),
    sa.Column("input_bytes", sa.BigInteger),
    sa.Column("output_bytes", sa.BigInteger),
    sa.Column("depends_on", sa.Text),  # JSON list of node keys
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column(
        "execution_id", sa.Text, sa.ForeignKey("executions.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("node_id", sa.Text),
    sa.Column("ts", sa.Double, nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    sa.Index("ix_events_execution_seq", "execution_id", "seq"),
)

# Blueprints as submitted, by the SHA-256 of their canonical JSON (one row per distinct one).
blueprints = sa.Table(
    "blueprints",
    metadata,
    sa.Column("digest", sa.Text, primary_key=True),
    sa.Column("body", sa.Text, nullable=False),
)

# Each node's output (packed: JSON, or a blob reference) as it stood when the execution ended.
node_outputs = sa.Table(
    "node_outputs",
    metadata,
    sa.Column(
        "execution_id",
        sa.Text,
        sa.ForeignKey("executions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("node_id", sa.Text, primary_key=True),
    sa.Column("output", sa.Text, nullable=False),
)

schema_version = sa.Table(
    "schema_version", metadata, sa.Column("version", sa.Integer, nullable=False)
)
