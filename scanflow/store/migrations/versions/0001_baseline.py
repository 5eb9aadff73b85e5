"""Baseline: the store's tables as Scanflow made them before it used migrations.

A store made then has no ``alembic_version`` table, and its vintage may lack columns
added later (``runs.engine_started_at`` and the like) or whole tables (the agents'):
this migration creates what is missing and leaves what exists, so every such store
arrives at the same schema.

Revision ID: 0001
Revises:
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _tables() -> list[tuple[str, list[sa.Column], list[sa.Constraint], list[str]]]:
    """(name, columns, constraints, indexed columns) of every table at the baseline."""
    S, T, F, I, J = sa.String, sa.Text, sa.Float, sa.Integer, sa.JSON  # noqa: N806, E741
    return [
        (
            "runs",
            [
                sa.Column("id", S(64), primary_key=True),
                sa.Column("app", S(63), nullable=False),
                sa.Column("team", S(63), nullable=False),
                sa.Column("workflow", S(63), nullable=False),
                sa.Column("status", S(16), nullable=False),
                sa.Column("parameters", J, nullable=False),
                sa.Column("spec", T, nullable=False),
                sa.Column("base_dir", T, nullable=False),
                sa.Column("run_dir", T, nullable=False),
                sa.Column("tracking_uri", T, nullable=True),
                sa.Column("mlflow_run_id", S(64), nullable=True),
                sa.Column("engine_pid", I, nullable=True),
                sa.Column("engine_started_at", F, nullable=True),
                sa.Column("error", T, nullable=True),
                sa.Column("created_at", F, nullable=False),
                sa.Column("started_at", F, nullable=True),
                sa.Column("finished_at", F, nullable=True),
            ],
            [],
            ["workflow", "status"],
        ),
        (
            "steps",
            [
                sa.Column("id", I, primary_key=True, autoincrement=True),
                sa.Column("run_id", S(64), sa.ForeignKey("runs.id"), nullable=False),
                sa.Column("name", S(63), nullable=False),
                sa.Column("status", S(16), nullable=False),
                sa.Column("depends_on", J, nullable=False),
                sa.Column("cache_key", S(64), nullable=True),
                sa.Column("cached_from", S(64), nullable=True),
                sa.Column("output_dir", T, nullable=True),
                sa.Column("outputs_digest", S(64), nullable=True),
                sa.Column("mlflow_run_id", S(64), nullable=True),
                sa.Column("pid", I, nullable=True),
                sa.Column("pid_started_at", F, nullable=True),
                sa.Column("error", T, nullable=True),
                sa.Column("started_at", F, nullable=True),
                sa.Column("finished_at", F, nullable=True),
            ],
            [sa.UniqueConstraint("run_id", "name")],
            ["run_id"],
        ),
        (
            "attempts",
            [
                sa.Column("id", I, primary_key=True, autoincrement=True),
                sa.Column("step_id", I, sa.ForeignKey("steps.id"), nullable=False),
                sa.Column("number", I, nullable=False),
                sa.Column("pid", I, nullable=True),
                sa.Column("exit_code", I, nullable=True),
                sa.Column("log_path", T, nullable=False),
                sa.Column("error", T, nullable=True),
                sa.Column("started_at", F, nullable=False),
                sa.Column("finished_at", F, nullable=True),
            ],
            [],
            ["step_id"],
        ),
        (
            "cache",
            [
                sa.Column("key", S(64), primary_key=True),
                sa.Column("run_id", S(64), nullable=False),
                sa.Column("step", S(63), nullable=False),
                sa.Column("output_dir", T, nullable=False),
                sa.Column("outputs_digest", S(64), nullable=False),
                sa.Column("created_at", F, nullable=False),
            ],
            [],
            [],
        ),
        (
            "agent_state",
            [
                sa.Column("agent", S(63), primary_key=True),
                sa.Column("key", S(200), primary_key=True),
                sa.Column("value", J, nullable=True),
                sa.Column("updated_at", F, nullable=False),
            ],
            [],
            [],
        ),
        (
            "agent_messages",
            [
                sa.Column("receiver", S(63), primary_key=True),
                sa.Column("id", S(64), primary_key=True),
                sa.Column("sender", S(63), nullable=False),
                sa.Column("intent", S(63), nullable=False),
                sa.Column("payload", J, nullable=False),
                sa.Column("correlation_id", S(64), nullable=True),
                sa.Column("created_at", F, nullable=False),
                sa.Column("received_at", F, nullable=False),
                sa.Column("status", S(16), nullable=False),
                sa.Column("duplicates", I, nullable=False),
            ],
            [],
            ["status"],
        ),
        (
            "agent_outbox",
            [
                sa.Column("id", S(64), primary_key=True),
                sa.Column("sender", S(63), nullable=False),
                sa.Column("receiver", S(63), nullable=False),
                sa.Column("body", J, nullable=False),
                sa.Column("status", S(16), nullable=False),
                sa.Column("attempts", I, nullable=False),
                sa.Column("last_error", T, nullable=True),
                sa.Column("created_at", F, nullable=False),
                sa.Column("updated_at", F, nullable=False),
            ],
            [],
            ["sender", "status"],
        ),
        (
            "agent_decisions",
            [
                sa.Column("id", S(64), primary_key=True),
                sa.Column("app", S(63), nullable=False),
                sa.Column("agent", S(63), nullable=False),
                sa.Column("rule", S(100), nullable=False),
                sa.Column("action", S(100), nullable=False),
                sa.Column("key", S(100), nullable=False),
                sa.Column("reason", T, nullable=False),
                sa.Column("status", S(16), nullable=False),
                sa.Column("guarded", sa.Boolean, nullable=False),
                sa.Column("evidence", J, nullable=False),
                sa.Column("steps", J, nullable=False),
                sa.Column("outcome", T, nullable=True),
                sa.Column("correlation_id", S(64), nullable=True),
                sa.Column("created_at", F, nullable=False),
                sa.Column("started_at", F, nullable=True),
                sa.Column("finished_at", F, nullable=True),
                sa.Column("mlflow_run_id", S(64), nullable=True),
            ],
            [],
            ["agent", "status", "created_at"],
        ),
        (
            "agent_events",
            [
                sa.Column("id", I, primary_key=True, autoincrement=True),
                sa.Column("agent", S(63), nullable=False),
                sa.Column("kind", S(32), nullable=False),
                sa.Column("detail", J, nullable=False),
                sa.Column("at", F, nullable=False),
            ],
            [],
            ["agent", "kind", "at"],
        ),
        (
            "agent_endpoints",
            [
                sa.Column("agent", S(63), primary_key=True),
                sa.Column("url", T, nullable=True),
                sa.Column("pid", I, nullable=False),
                sa.Column("started_at", F, nullable=False),
                sa.Column("heartbeat_at", F, nullable=False),
            ],
            [],
            [],
        ),
    ]


def upgrade() -> None:
    existing = sa.inspect(op.get_bind())
    for name, columns, constraints, indexed in _tables():
        had = existing.has_table(name)
        if not had:
            op.create_table(name, *columns, *constraints)
        else:  # a store from before migrations: add the (nullable) columns it lacks
            present = {c["name"] for c in existing.get_columns(name)}
            missing = [c for c in columns if c.name not in present]
            if missing:
                with op.batch_alter_table(name) as batch:
                    for column in missing:
                        batch.add_column(column)
        indexes = {i["name"] for i in existing.get_indexes(name)} if had else set()
        for indexed_column in indexed:
            index = op.f(f"ix_{name}_{indexed_column}")
            if index not in indexes:
                op.create_index(index, name, [indexed_column])


def downgrade() -> None:
    for name, *_ in reversed(_tables()):
        op.drop_table(name)
