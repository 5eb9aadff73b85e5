"""Tables of the agents' state: key/value state, messages, outbox, decisions, events, endpoints."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from scanflow.store.models import Base


class AgentStateRecord(Base):
    """One piece of an agent's state: a watermark, a history, a trigger's arming."""

    __tablename__ = "agent_state"

    agent: Mapped[str] = mapped_column(String(63), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON, nullable=True)
    updated_at: Mapped[float] = mapped_column(Float)


class AgentMessageRecord(Base):
    """A message an agent received; its id makes delivery idempotent."""

    __tablename__ = "agent_messages"

    receiver: Mapped[str] = mapped_column(String(63), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    sender: Mapped[str] = mapped_column(String(63))
    intent: Mapped[str] = mapped_column(String(63))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    correlation_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    received_at: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), index=True)  # received | processed
    duplicates: Mapped[int] = mapped_column(Integer, default=0)


class AgentOutboxRecord(Base):
    """A message on its way out: retried until delivered or dead-lettered."""

    __tablename__ = "agent_outbox"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    sender: Mapped[str] = mapped_column(String(63), index=True)
    receiver: Mapped[str] = mapped_column(String(63))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), index=True)  # pending | delivered | dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class DecisionRecord(Base):
    """One decision: its rule, evidence, plan of steps, progress and outcome."""

    __tablename__ = "agent_decisions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    app: Mapped[str] = mapped_column(String(63))
    agent: Mapped[str] = mapped_column(String(63), index=True)
    rule: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(100))
    key: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text)
    # pending | running | succeeded | failed | blocked
    status: Mapped[str] = mapped_column(String(16), index=True)
    guarded: Mapped[bool] = mapped_column(Boolean, default=True)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    outcome: Mapped[str | None] = mapped_column(Text, nullable=True)
    correlation_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[float] = mapped_column(Float, index=True)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)


class AgentEventRecord(Base):
    """Something that happened to an agent: started, a sensor failed or hung, a dead letter."""

    __tablename__ = "agent_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    agent: Mapped[str] = mapped_column(String(63), index=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[float] = mapped_column(Float, index=True)


class AgentEndpointRecord(Base):
    """Where a running agent listens (how agents in other processes reach it)."""

    __tablename__ = "agent_endpoints"

    agent: Mapped[str] = mapped_column(String(63), primary_key=True)
    url: Mapped[str | None] = mapped_column(Text, nullable=True)
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[float] = mapped_column(Float)
    heartbeat_at: Mapped[float] = mapped_column(Float)
