"""Tables of Scanflow's own state: workflow runs, their steps, attempts, and the step cache."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """Declarative base of the store's tables."""


class RunRecord(Base):
    """One run of a workflow."""

    __tablename__ = "runs"
    __table_args__ = (  # the server's run lists: newest first, per app, by status
        Index("ix_runs_app_created", "app", "created_at"),
        Index("ix_runs_app_status_created", "app", "status", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    app: Mapped[str] = mapped_column(String(63))
    team: Mapped[str] = mapped_column(String(63))
    workflow: Mapped[str] = mapped_column(String(63), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    spec: Mapped[str] = mapped_column(Text)
    base_dir: Mapped[str] = mapped_column(Text)
    run_dir: Mapped[str] = mapped_column(Text)
    tracking_uri: Mapped[str | None] = mapped_column(Text, nullable=True)
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # the engine that runs it (its name in scanflow.engines.registry)
    engine: Mapped[str] = mapped_column(String(63), default="local", server_default="local")
    # what that engine needs to find the run again, read and written by it alone
    # (local: its process; kubernetes: kind, name, namespace...)
    engine_ref: Mapped[dict[str, Any] | None] = mapped_column(
        JSON(none_as_null=True), nullable=True
    )
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class StepRecord(Base):
    """One executor within a run."""

    __tablename__ = "steps"
    __table_args__ = (UniqueConstraint("run_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), index=True)
    name: Mapped[str] = mapped_column(String(63))
    status: Mapped[str] = mapped_column(String(16))
    depends_on: Mapped[list[str]] = mapped_column(JSON, default=list)
    cache_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    cached_from: Mapped[str | None] = mapped_column(String(64), nullable=True)
    output_dir: Mapped[str | None] = mapped_column(Text, nullable=True)
    outputs_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # the engine's handle on the step's current work (local: its process)
    engine_ref: Mapped[dict[str, Any] | None] = mapped_column(
        JSON(none_as_null=True), nullable=True
    )
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class AttemptRecord(Base):
    """One try of a step: its exit code, error and times."""

    __tablename__ = "attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    step_id: Mapped[int] = mapped_column(ForeignKey("steps.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # the engine's handle on the try (local: process and log file; kubernetes: its pod)
    engine_ref: Mapped[dict[str, Any] | None] = mapped_column(
        JSON(none_as_null=True), nullable=True
    )
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    started_at: Mapped[float] = mapped_column(Float)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class CacheEntry(Base):
    """A successful step's outputs, found again by the digest of everything it depended on."""

    __tablename__ = "cache"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(64))
    step: Mapped[str] = mapped_column(String(63))
    output_dir: Mapped[str] = mapped_column(Text)
    outputs_digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)
