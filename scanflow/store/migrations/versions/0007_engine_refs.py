"""Engine-specific fields move behind the engine: steps and attempts get an ``engine_ref``
(JSON) as runs have, and the local engine's process columns move into them.

``runs.engine_pid``/``engine_started_at``, ``steps.pid``/``pid_started_at`` and
``attempts.pid``/``log_path`` are copied into the rows' ``engine_ref`` (keys ``pid``,
``pid_started_at``, ``log_path``), then dropped; a Kubernetes run keeps its driver process
under ``driver`` and a Kubernetes attempt its pod (``pod/NAME`` before) under ``pod``.
The downgrade copies them back. The keys are spelled out here, not imported from the
engines, so that this migration stays as it was written.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-14
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

POD_PREFIX = "pod/"  # how the Kubernetes engine wrote a pod into attempts.log_path

runs = sa.table(
    "runs",
    sa.column("id", sa.String),
    sa.column("engine", sa.String),
    sa.column("engine_pid", sa.Integer),
    sa.column("engine_started_at", sa.Float),
    sa.column("engine_ref", sa.JSON(none_as_null=True)),
)
steps = sa.table(
    "steps",
    sa.column("id", sa.Integer),
    sa.column("run_id", sa.String),
    sa.column("pid", sa.Integer),
    sa.column("pid_started_at", sa.Float),
    sa.column("engine_ref", sa.JSON(none_as_null=True)),
)
attempts = sa.table(
    "attempts",
    sa.column("id", sa.Integer),
    sa.column("step_id", sa.Integer),
    sa.column("pid", sa.Integer),
    sa.column("log_path", sa.Text),
    sa.column("engine_ref", sa.JSON(none_as_null=True)),
)


def _process(
    pid: int | None, started_at: float | None = None, log_path: str | None = None
) -> dict[str, Any]:
    """A local process as the local engine's references spell it (unknown keys left out)."""
    ref = {"pid": pid, "pid_started_at": started_at, "log_path": log_path}
    return {k: v for k, v in ref.items() if v not in (None, "")}


def _set(table: sa.TableClause, rows: list[dict[str, Any]]) -> None:
    """Update rows by id; each row is ``{"_id": ..., column: value, ...}``."""
    if not rows:
        return
    names = [k for k in rows[0] if k != "_id"]
    statement = (
        table.update()
        .where(table.c.id == sa.bindparam("_id"))
        .values({n: sa.bindparam(n, type_=table.c[n].type) for n in names})
    )
    op.get_bind().execute(statement, rows)


def _attempt_rows(*columns: sa.ColumnElement) -> sa.Select:
    return sa.select(attempts.c.id, runs.c.engine, *columns).select_from(
        attempts.join(steps, steps.c.id == attempts.c.step_id).join(
            runs, runs.c.id == steps.c.run_id
        )
    )


def upgrade() -> None:
    for table in ("steps", "attempts"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("engine_ref", sa.JSON(), nullable=True))
    bind = op.get_bind()

    moved = []
    for row in bind.execute(
        sa.select(
            runs.c.id, runs.c.engine, runs.c.engine_pid, runs.c.engine_started_at, runs.c.engine_ref
        ).where(runs.c.engine_pid.is_not(None))
    ):
        ref = dict(row.engine_ref or {})
        process = _process(row.engine_pid, row.engine_started_at)
        if row.engine == "kubernetes":
            ref["driver"] = process
        else:
            ref.update(process)
        moved.append({"_id": row.id, "engine_ref": ref})
    _set(runs, moved)

    rows = bind.execute(
        sa.select(steps.c.id, steps.c.pid, steps.c.pid_started_at).where(steps.c.pid.is_not(None))
    )
    _set(steps, [{"_id": r.id, "engine_ref": _process(r.pid, r.pid_started_at)} for r in rows])

    moved = []
    for row in bind.execute(_attempt_rows(attempts.c.pid, attempts.c.log_path)):
        if row.engine == "kubernetes" and (row.log_path or "").startswith(POD_PREFIX):
            ref = {"pod": row.log_path.removeprefix(POD_PREFIX)}
        else:
            ref = _process(row.pid, None, row.log_path)
        moved.append({"_id": row.id, "engine_ref": ref or None})
    _set(attempts, moved)

    with op.batch_alter_table("runs") as batch:
        batch.drop_column("engine_pid")
        batch.drop_column("engine_started_at")
    with op.batch_alter_table("steps") as batch:
        batch.drop_column("pid")
        batch.drop_column("pid_started_at")
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("pid")
        batch.drop_column("log_path")


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("engine_pid", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("engine_started_at", sa.Float(), nullable=True))
    with op.batch_alter_table("steps") as batch:
        batch.add_column(sa.Column("pid", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("pid_started_at", sa.Float(), nullable=True))
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("pid", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("log_path", sa.Text(), nullable=True))
    bind = op.get_bind()

    moved = []
    for row in bind.execute(sa.select(runs.c.id, runs.c.engine, runs.c.engine_ref)):
        ref = dict(row.engine_ref or {})
        process = ref.pop("driver", {}) if row.engine == "kubernetes" else ref
        pid, started_at = process.pop("pid", None), process.pop("pid_started_at", None)
        if pid is not None:
            moved.append(
                {
                    "_id": row.id,
                    "engine_pid": pid,
                    "engine_started_at": started_at,
                    "engine_ref": ref or None,
                }
            )
    _set(runs, moved)

    rows = bind.execute(sa.select(steps.c.id, steps.c.engine_ref))
    _set(
        steps,
        [
            {
                "_id": r.id,
                "pid": r.engine_ref.get("pid"),
                "pid_started_at": r.engine_ref.get("pid_started_at"),
            }
            for r in rows
            if r.engine_ref
        ],
    )

    moved = []
    for row in bind.execute(_attempt_rows(attempts.c.engine_ref)):
        ref = row.engine_ref or {}
        log_path = POD_PREFIX + ref["pod"] if "pod" in ref else ref.get("log_path", "")
        moved.append({"_id": row.id, "pid": ref.get("pid"), "log_path": log_path})
    _set(attempts, moved)

    with op.batch_alter_table("attempts") as batch:
        batch.alter_column("log_path", existing_type=sa.Text(), nullable=False)
        batch.drop_column("engine_ref")
    with op.batch_alter_table("steps") as batch:
        batch.drop_column("engine_ref")
