"""Run metrics copied from MLflow for the runs list (filters, columns, sorting).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-20
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_metrics",
        sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("step", sa.String(63), nullable=False),
    )
    op.create_index("ix_run_metrics_key_value", "run_metrics", ["key", "value"])
    op.create_table(
        "run_metric_sync",
        sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("finished_at", sa.Float, nullable=False),
        sa.Column("synced_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("run_metric_sync")
    op.drop_index("ix_run_metrics_key_value", "run_metrics")
    op.drop_table("run_metrics")
