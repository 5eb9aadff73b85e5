"""The scheduler's rows in the state store: schedule state and firings."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from scanflow.store import TERMINAL, RunRecord, Store
from scanflow.store.schedule_models import FiringRecord, ScheduleState


class ScheduleBook:
    """Reads and writes the scheduler's tables of one application's store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def state(self, name: str) -> ScheduleState | None:
        """The persisted state of schedule ``name`` (None: never seen)."""
        with self.store.session() as s:
            return s.get(ScheduleState, name)

    def save_state(self, name: str, at: float, **fields: Any) -> ScheduleState:
        """Set fields of schedule ``name``'s state (created when missing)."""
        with self.store.session() as s:
            row = s.get(ScheduleState, name)
            if row is None:
                row = ScheduleState(name=name, updated_at=at)
                s.add(row)
            for key, value in fields.items():
                setattr(row, key, value)
            row.updated_at = at
            return row

    def add_firing(self, firing: FiringRecord) -> FiringRecord:
        """Record a firing; returns it with its id."""
        with self.store.session() as s:
            s.add(firing)
            s.flush()
            return firing

    def firings(self, name: str | None = None, limit: int = 20) -> list[FiringRecord]:
        """The newest firings first (of schedule ``name`` when given)."""
        with self.store.session() as s:
            query = select(FiringRecord).order_by(FiringRecord.id.desc()).limit(limit)
            if name is not None:
                query = query.where(FiringRecord.schedule == name)
            return list(s.scalars(query))

    def active_runs(self, name: str) -> list[RunRecord]:
        """Runs started by schedule ``name`` that are not over (a local run whose engine
        process is gone counts as over: it is interrupted, not running; a run on a
        cluster goes on without the process that submitted it)."""
        from scanflow.engines.local.recovery import interrupted

        with self.store.session() as s:
            runs = s.scalars(
                select(RunRecord)
                .join(FiringRecord, FiringRecord.run_id == RunRecord.id)
                .where(FiringRecord.schedule == name, RunRecord.status.not_in(TERMINAL))
            )
            return [r for r in runs if r.engine != "local" or not interrupted(r)]
