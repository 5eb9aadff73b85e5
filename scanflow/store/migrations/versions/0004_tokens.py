"""The control server's API tokens (hashed), and indexes for listing runs fast.

Revision ID: 0004
Revises: 0002
Create Date: 2026-12-12
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("team", sa.String(63), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("name", sa.String(100), nullable=False, server_default=""),
        sa.Column("salt", sa.LargeBinary(32), nullable=False),
        sa.Column("digest", sa.LargeBinary(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=True),
        sa.Column("revoked_at", sa.Float, nullable=True),
        sa.Column("last_used_at", sa.Float, nullable=True),
    )
    op.create_index("ix_api_tokens_team", "api_tokens", ["team"])
    # the runs list pages by (app, created_at) and (app, status, created_at)
    op.create_index("ix_runs_app_created", "runs", ["app", "created_at"])
    op.create_index("ix_runs_app_status_created", "runs", ["app", "status", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_runs_app_status_created", "runs")
    op.drop_index("ix_runs_app_created", "runs")
    op.drop_index("ix_api_tokens_team", "api_tokens")
    op.drop_table("api_tokens")
