"""Tables of run metrics copied from MLflow, so the runs list filters and sorts on them in SQL."""

from __future__ import annotations

from sqlalchemy import Float, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from scanflow.store.models import Base


class RunMetricRecord(Base):
    """The last value of one metric of a run (over all its steps' MLflow runs)."""

    __tablename__ = "run_metrics"
    __table_args__ = (Index("ix_run_metrics_key_value", "key", "value"),)

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[float] = mapped_column(Float)
    step: Mapped[str] = mapped_column(String(63))


class RunMetricSyncRecord(Base):
    """When a run's metrics were copied: again once the run ends anew (a retry)."""

    __tablename__ = "run_metric_sync"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    finished_at: Mapped[float] = mapped_column(Float)
    synced_at: Mapped[float] = mapped_column(Float)
