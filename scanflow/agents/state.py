"""An agent's state in the store: what it has seen, received, sent, decided and done.

Everything an agent needs to resume after a crash lives here: sensor watermarks and
histories, message ids seen, the outbox, and every decision with its plan's progress.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import select, update

from scanflow.agents.messages import Message
from scanflow.store import Store
from scanflow.store.agent_models import (
    AgentEndpointRecord,
    AgentEventRecord,
    AgentMessageRecord,
    AgentOutboxRecord,
    AgentStateRecord,
    DecisionRecord,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import CursorResult

PAUSED = "paused"  # the state key a person's pause is kept under
OPEN = ("pending", "running", "awaiting", "approved")  # awaiting: a person must approve
# rejected: a person refused an awaiting plan; it never runs
ACTED = ("running", "succeeded", "failed")


class AgentState:
    """The state of agent ``agent`` in ``store``."""

    def __init__(self, store: Store, agent: str) -> None:
        self.store = store
        self.agent = agent

    # -- key/value ----------------------------------------------------------------------
    def get(self, key: str, default: Any = None) -> Any:
        """The stored value of ``key``."""
        with self.store.session() as s:
            row = s.get(AgentStateRecord, (self.agent, key))
            return default if row is None else row.value

    def items(self, prefix: str) -> dict[str, Any]:
        """Every ``key: value`` whose key starts with ``prefix`` (prefix removed)."""
        with self.store.session() as s:
            rows = s.scalars(
                select(AgentStateRecord).where(
                    AgentStateRecord.agent == self.agent, AgentStateRecord.key.like(f"{prefix}%")
                )
            )
            return {r.key[len(prefix) :]: r.value for r in rows}

    def paused(self) -> dict[str, Any] | None:
        """Who paused this agent, when and why; None while it runs."""
        value = self.get(PAUSED)
        return value if isinstance(value, dict) else None

    def set_paused(self, by: str, reason: str | None = None, *, paused: bool = True) -> None:
        """Pause the agent (or resume it, ``paused=False``); recorded as an event."""
        info = {"by": by, "at": time.time(), "reason": reason} if paused else None
        self.put({PAUSED: info})
        self.event("paused" if paused else "resumed", by=by, reason=reason)

    def put(self, values: dict[str, Any]) -> None:
        """Store several keys in one transaction."""
        self.commit(values, [])

    def commit(self, values: dict[str, Any], decisions: list[DecisionRecord]) -> None:
        """Store state and new decisions together: a tick is recorded whole or not at all."""
        now = time.time()
        with self.store.session() as s:
            for key, value in values.items():
                s.merge(AgentStateRecord(agent=self.agent, key=key, value=value, updated_at=now))
            s.add_all(decisions)

    # -- events -------------------------------------------------------------------------
    def event(self, kind: str, **detail: Any) -> None:
        """Record something that happened (sensor error, dead letter, start...)."""
        with self.store.session() as s:
            s.add(AgentEventRecord(agent=self.agent, kind=kind, detail=detail, at=time.time()))

    def events(self, kind: str | None = None, limit: int = 100) -> list[AgentEventRecord]:
        """The newest events of this agent first."""
        with self.store.session() as s:
            query = select(AgentEventRecord).where(AgentEventRecord.agent == self.agent)
            if kind:
                query = query.where(AgentEventRecord.kind == kind)
            return list(s.scalars(query.order_by(AgentEventRecord.id.desc()).limit(limit)))

    # -- inbox --------------------------------------------------------------------------
    def accept(self, message: Message) -> bool:
        """Record a received message; False when its id was seen before (a duplicate)."""
        with self.store.session() as s:
            row = s.get(AgentMessageRecord, (self.agent, message.id))
            if row is not None:
                row.duplicates += 1
                return False
            s.add(
                AgentMessageRecord(
                    receiver=self.agent,
                    id=message.id,
                    sender=message.sender,
                    intent=message.intent,
                    payload=message.payload,
                    correlation_id=message.correlation_id,
                    created_at=message.created_at,
                    received_at=time.time(),
                    status="received",
                )
            )
            return True

    def unprocessed(self) -> list[Message]:
        """Messages received but not yet acted on (after a restart), oldest first."""
        with self.store.session() as s:
            rows = s.scalars(
                select(AgentMessageRecord)
                .where(
                    AgentMessageRecord.receiver == self.agent,
                    AgentMessageRecord.status == "received",
                )
                .order_by(AgentMessageRecord.received_at)
            )
            return [_message(r) for r in rows]

    def processed(self, message_id: str) -> None:
        """Mark a received message as acted on."""
        with self.store.session() as s:
            s.execute(
                update(AgentMessageRecord)
                .where(
                    AgentMessageRecord.receiver == self.agent, AgentMessageRecord.id == message_id
                )
                .values(status="processed")
            )

    def received(self, limit: int = 100) -> list[AgentMessageRecord]:
        """Messages received, newest first."""
        with self.store.session() as s:
            return list(
                s.scalars(
                    select(AgentMessageRecord)
                    .where(AgentMessageRecord.receiver == self.agent)
                    .order_by(AgentMessageRecord.received_at.desc())
                    .limit(limit)
                )
            )

    # -- outbox -------------------------------------------------------------------------
    def enqueue(self, message: Message) -> None:
        """Put a message in the outbox (before any attempt to deliver it)."""
        now = time.time()
        with self.store.session() as s:
            s.merge(
                AgentOutboxRecord(
                    id=message.id,
                    sender=self.agent,
                    receiver=message.receiver,
                    body=message.model_dump(mode="json"),
                    status="pending",
                    attempts=0,
                    created_at=now,
                    updated_at=now,
                )
            )

    def outbox(self, status: str | None = "pending") -> list[AgentOutboxRecord]:
        """Messages this agent sent, oldest first, optionally of one status."""
        with self.store.session() as s:
            query = select(AgentOutboxRecord).where(AgentOutboxRecord.sender == self.agent)
            if status:
                query = query.where(AgentOutboxRecord.status == status)
            return list(s.scalars(query.order_by(AgentOutboxRecord.created_at)))

    def delivery(self, message_id: str, status: str, attempts: int, error: str | None) -> None:
        """Record a delivery attempt's result."""
        with self.store.session() as s:
            s.execute(
                update(AgentOutboxRecord)
                .where(AgentOutboxRecord.id == message_id)
                .values(status=status, attempts=attempts, last_error=error, updated_at=time.time())
            )

    # -- decisions ----------------------------------------------------------------------
    def decision(self, decision_id: str) -> DecisionRecord:
        """One decision."""
        with self.store.session() as s:
            row = s.get(DecisionRecord, decision_id)
            if row is None:
                raise KeyError(decision_id)
            return row

    def update_decision(self, decision_id: str, **fields: Any) -> None:
        """Set fields of a decision."""
        with self.store.session() as s:
            row = s.get(DecisionRecord, decision_id)
            if row is None:
                raise KeyError(decision_id)
            for key, value in fields.items():
                setattr(row, key, value)

    def claim(self, decision_id: str, expected: str, **fields: Any) -> bool:
        """Set ``fields`` of a decision only if its status is still ``expected`` (see
        :func:`transition`)."""
        return transition(self.store, decision_id, expected, **fields)

    def open_decisions(self) -> list[DecisionRecord]:
        """Decisions whose plan has not finished (to resume after a restart), oldest first."""
        with self.store.session() as s:
            return list(
                s.scalars(
                    select(DecisionRecord)
                    .where(DecisionRecord.agent == self.agent, DecisionRecord.status.in_(OPEN))
                    .order_by(DecisionRecord.created_at)
                )
            )

    def approved(self) -> list[DecisionRecord]:
        """Decisions a person approved that this agent has not started yet, oldest first."""
        with self.store.session() as s:
            return list(
                s.scalars(
                    select(DecisionRecord)
                    .where(DecisionRecord.agent == self.agent, DecisionRecord.status == "approved")
                    .order_by(DecisionRecord.created_at)
                )
            )

    def running_keys(self) -> list[str]:
        """Guard keys of this agent's plans that have not finished."""
        with self.store.session() as s:
            rows = s.execute(
                select(DecisionRecord.key).where(
                    DecisionRecord.agent == self.agent, DecisionRecord.status.in_(OPEN)
                )
            )
            return [k for (k,) in rows]

    def decisions(self, limit: int = 50) -> list[DecisionRecord]:
        """This agent's decisions, newest first."""
        with self.store.session() as s:
            return list(
                s.scalars(
                    select(DecisionRecord)
                    .where(DecisionRecord.agent == self.agent)
                    .order_by(DecisionRecord.created_at.desc())
                    .limit(limit)
                )
            )

    def acted(self, since: float) -> list[tuple[str, float]]:
        """``(key, started_at)`` of guarded actions started since ``since`` (for guardrails)."""
        with self.store.session() as s:
            rows = s.execute(
                select(DecisionRecord.key, DecisionRecord.created_at).where(
                    DecisionRecord.agent == self.agent,
                    DecisionRecord.guarded.is_(True),
                    DecisionRecord.status.in_((*OPEN, *ACTED)),
                    DecisionRecord.created_at >= since,
                )
            )
            return [(k, at) for k, at in rows]

    # -- endpoints ----------------------------------------------------------------------
    def register(self, url: str | None) -> None:
        """Announce where this agent listens (None: in-process only)."""
        now = time.time()
        with self.store.session() as s:
            s.merge(
                AgentEndpointRecord(
                    agent=self.agent, url=url, pid=os.getpid(), started_at=now, heartbeat_at=now
                )
            )

    def heartbeat(self) -> None:
        """Say this agent is alive."""
        with self.store.session() as s:
            s.execute(
                update(AgentEndpointRecord)
                .where(AgentEndpointRecord.agent == self.agent)
                .values(heartbeat_at=time.time())
            )


def endpoint(store: Store, agent: str) -> AgentEndpointRecord | None:
    """Where ``agent`` said it listens, if it ever started."""
    with store.session() as s:
        return s.get(AgentEndpointRecord, agent)


def endpoints(store: Store) -> list[AgentEndpointRecord]:
    """Every agent that ever started in this store."""
    with store.session() as s:
        return list(s.scalars(select(AgentEndpointRecord).order_by(AgentEndpointRecord.agent)))


def transition(store: Store, decision_id: str, expected: str, **fields: Any) -> bool:
    """Set ``fields`` of decision ``decision_id`` in one conditional UPDATE, only if its
    status is still ``expected``; False when another writer changed it first (a person
    rejecting a plan while another approves it, an agent starting a plan just rejected)."""
    with store.session() as s:
        done = s.execute(
            update(DecisionRecord)
            .where(DecisionRecord.id == decision_id, DecisionRecord.status == expected)
            .values(**fields)
        )
        return cast("CursorResult[Any]", done).rowcount == 1


def all_decisions(
    store: Store, agent: str | None = None, since: float | None = None, limit: int = 200
) -> list[DecisionRecord]:
    """Decisions of every agent (or one), oldest first."""
    with store.session() as s:
        query = select(DecisionRecord)
        if agent:
            query = query.where(DecisionRecord.agent == agent)
        if since is not None:
            query = query.where(DecisionRecord.created_at >= since)
        rows = list(s.scalars(query.order_by(DecisionRecord.created_at.desc()).limit(limit)))
        return rows[::-1]


def _message(row: AgentMessageRecord) -> Message:
    return Message(
        id=row.id,
        sender=row.sender,
        receiver=row.receiver,
        intent=row.intent,
        payload=row.payload or {},
        correlation_id=row.correlation_id,
        created_at=row.created_at,
    )
