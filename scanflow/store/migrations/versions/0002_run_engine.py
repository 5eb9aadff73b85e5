"""Runs name the engine that runs them (``local`` for every run made before).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("engine", sa.String(63), nullable=False, server_default="local"))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("engine")
