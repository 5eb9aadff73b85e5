"""Tables of the scheduler: each schedule's state, and every firing with what caused it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from scanflow.store.models import Base


class ScheduleState(Base):
    """A schedule's persisted state: paused or not, the last due time it handled (so
    missed firings are known after downtime) and its trigger's watermark."""

    __tablename__ = "schedule_state"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    paused: Mapped[bool | None] = mapped_column(Boolean, nullable=True)  # None: as declared
    last_due_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    watermark: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    updated_at: Mapped[float] = mapped_column(Float)


class FiringRecord(Base):
    """One firing of a schedule: when it was due, what fired it, and the run it started
    (``status`` ``started``), or why none (``skipped``, ``failed``)."""

    __tablename__ = "schedule_firings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    schedule: Mapped[str] = mapped_column(String(63), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # cron interval watch alias after manual
    due_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    fired_at: Mapped[float] = mapped_column(Float)
    cause: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    run_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
