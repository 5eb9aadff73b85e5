"""Run parameters as indexed rows (``run_params``), so the runs list filters and sorts on
them without reading every run's JSON; existing runs are copied in.

The copy is spelled out here, not imported from the store's models, so that this
migration stays as it was written: numbers (booleans as 1 and 0) go to ``num_value``,
texts of up to 1000 characters to ``text_value``; lists, mappings and None are left out.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-21
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

MAX_TEXT = 1000
BATCH = 1000

runs = sa.table("runs", sa.column("id", sa.String), sa.column("parameters", sa.JSON))


def _rows(run_id: str, parameters: dict[str, Any] | None) -> list[dict[str, Any]]:
    rows = []
    for key, value in (parameters or {}).items():
        if isinstance(value, bool):
            num, text = float(value), str(value).lower()
        elif isinstance(value, int | float):
            num, text = float(value), None
        elif isinstance(value, str) and len(value) <= MAX_TEXT:
            num, text = None, value
        else:
            continue
        if len(key) <= 250:
            rows.append({"run_id": run_id, "key": key, "num_value": num, "text_value": text})
    return rows


def upgrade() -> None:
    params = op.create_table(
        "run_params",
        sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("num_value", sa.Float, nullable=True),
        sa.Column("text_value", sa.String(MAX_TEXT), nullable=True),
    )
    op.create_index("ix_run_params_key_num", "run_params", ["key", "num_value", "run_id"])
    op.create_index("ix_run_params_key_text", "run_params", ["key", "text_value", "run_id"])
    bind = op.get_bind()
    pending: list[dict[str, Any]] = []
    for row in bind.execute(sa.select(runs.c.id, runs.c.parameters)).fetchall():
        pending += _rows(row.id, row.parameters)
        if len(pending) >= BATCH:
            bind.execute(params.insert(), pending)
            pending = []
    if pending:
        bind.execute(params.insert(), pending)


def downgrade() -> None:
    op.drop_index("ix_run_params_key_text", "run_params")
    op.drop_index("ix_run_params_key_num", "run_params")
    op.drop_table("run_params")
