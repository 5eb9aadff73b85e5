"""The scheduler's tables: each schedule's state and every firing.

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "schedule_state",
        sa.Column("name", sa.String(63), primary_key=True),
        sa.Column("paused", sa.Boolean, nullable=True),
        sa.Column("last_due_at", sa.Float, nullable=True),
        sa.Column("watermark", sa.JSON, nullable=True),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "schedule_firings",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("schedule", sa.String(63), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("due_at", sa.Float, nullable=True),
        sa.Column("fired_at", sa.Float, nullable=False),
        sa.Column("cause", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("run_id", sa.String(64), nullable=True),
    )
    op.create_index("ix_schedule_firings_schedule", "schedule_firings", ["schedule"])
    op.create_index("ix_schedule_firings_run_id", "schedule_firings", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_schedule_firings_run_id", "schedule_firings")
    op.drop_index("ix_schedule_firings_schedule", "schedule_firings")
    op.drop_table("schedule_firings")
    op.drop_table("schedule_state")
