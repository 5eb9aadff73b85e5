"""Agents of an application: liveness, open plans, pause and resume, and their decisions
with evidence.

A paused agent senses nothing, decides nothing and starts no step of a plan (a step
already running is carried to its end; messages wait unread); it keeps its heartbeat, and
resuming carries on where it stopped. The pause is kept in the store, so it holds across
the agent's restarts.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from scanflow.api.errors import NotFound
from scanflow.api.views import ActionResult, AgentView, DeadLetterView, DecisionView
from scanflow.api.workspace import AppHandle, store_errors
from scanflow.store import Store
from scanflow.store.agent_models import DecisionRecord

if TYPE_CHECKING:
    from scanflow.agents.state import AgentState
    from scanflow.spec.model import Agent

ALIVE_SECONDS = 15.0


def dead_letters(state: AgentState) -> list[DeadLetterView]:
    """The messages ``state``'s agent gave up delivering, oldest first."""
    return [
        DeadLetterView(
            id=r.id,
            receiver=r.receiver,
            intent=r.body.get("intent"),
            attempts=r.attempts,
            error=r.last_error,
        )
        for r in state.outbox("dead")
    ]


def recent_errors(state: AgentState, scan: int = 50) -> list[dict[str, Any]]:
    """Errors and timeouts among the agent's newest ``scan`` events, newest first."""
    return [
        {"kind": e.kind, "at": e.at, **e.detail}
        for e in state.events(limit=scan)
        if e.kind.endswith(("_error", "_timeout"))
    ]


def agent_views(store: Store, app: str, declared: Sequence[Agent] = ()) -> list[AgentView]:
    """The ``declared`` agents of application ``app``, then the others that ran in ``store``:
    where each runs, whether its heartbeat is recent, its open plans, dead letters and errors."""
    from scanflow.agents.state import AgentState, endpoints

    found = {ep.agent: ep for ep in endpoints(store)}
    kinds = {a.name: (a.role, a.strategy) for a in declared}
    out = []
    for name in [*kinds, *(n for n in found if n not in kinds)]:
        ep = found.get(name)
        state = AgentState(store, name)
        letters = dead_letters(state)
        role, strategy = kinds.get(name, ("", None))
        out.append(
            AgentView(
                app=app,
                name=name,
                role=role,
                strategy=strategy,
                url=ep.url if ep else None,
                pid=ep.pid if ep else None,
                alive=bool(ep and time.time() - ep.heartbeat_at < ALIVE_SECONDS),
                heartbeat_at=ep.heartbeat_at if ep else None,
                open_decisions=len(state.open_decisions()),
                dead_letters=len(letters),
                letters=letters,
                errors=recent_errors(state)[:5],
                paused=state.paused(),
            )
        )
    return out


def _agent(app: AppHandle, name: str) -> AgentState:
    from scanflow.agents.state import AgentState

    if name not in {a.name for a in list_agents(app)}:
        known = ", ".join(a.name for a in app.project.app.agents) or "none"
        raise NotFound(f"no agent {name!r} in application {app.name!r} (agents: {known})")
    return AgentState(app.store, name)


def pause(app: AppHandle, name: str, who: str, reason: str | None = None) -> ActionResult:
    """Pause agent ``name``: it senses, decides and acts no more until resumed."""
    state = _agent(app, name)
    with store_errors(f"application {app.name!r}"):
        if state.paused() is not None:
            return ActionResult(message=f"agent {name} is already paused")
        state.set_paused(who, reason)
    return ActionResult(message=f"agent {name} paused: it senses, decides and acts no more")


def resume(app: AppHandle, name: str, who: str) -> ActionResult:
    """Resume paused agent ``name`` where it stopped."""
    state = _agent(app, name)
    with store_errors(f"application {app.name!r}"):
        if state.paused() is None:
            return ActionResult(message=f"agent {name} is not paused")
        state.set_paused(who, paused=False)
    return ActionResult(message=f"agent {name} resumed")


def list_agents(app: AppHandle) -> list[AgentView]:
    """Every declared agent of ``app`` (and any other that ran in its store)."""
    with store_errors(f"application {app.name!r}"):
        return agent_views(app.store, app.name, app.project.app.agents)


def decision_view(row: DecisionRecord) -> DecisionView:
    """The view of one stored decision (the server's, the CLI's and what rules see)."""
    steps = list(row.steps or [])
    return DecisionView(
        id=row.id,
        app=row.app,
        agent=row.agent,
        rule=row.rule,
        action=row.action,
        key=row.key,
        reason=row.reason,
        status=row.status,
        evidence=row.evidence or {},
        steps=steps,
        results={s["action"]: s.get("result") or {} for s in steps if s.get("status") == "done"},
        outcome=row.outcome,
        created_at=row.created_at,
        finished_at=row.finished_at,
        mlflow_run_id=row.mlflow_run_id,
        correlation_id=row.correlation_id,
    )


def decisions(app: AppHandle, agent: str | None = None, limit: int = 100) -> list[DecisionView]:
    """The newest decisions of ``app``'s agents (or one agent) first."""
    from scanflow.agents.state import all_decisions

    with store_errors(f"application {app.name!r}"):
        rows = all_decisions(app.store, agent, limit=limit)
    return [decision_view(r) for r in reversed(rows) if r.app == app.name]


def decision(app: AppHandle, decision_id: str) -> DecisionView:
    """Decision ``decision_id`` (or a unique prefix of at least 4 characters) with its
    evidence and plan."""
    with store_errors(f"application {app.name!r}"), app.store.session() as s:
        row = s.get(DecisionRecord, decision_id)
        if row is None and len(decision_id) >= 4:  # a unique prefix, as the CLI shows
            found = s.scalars(
                select(DecisionRecord)
                .where(DecisionRecord.id.startswith(decision_id, autoescape=True))
                .limit(2)
            ).all()
            row = found[0] if len(found) == 1 else None
    if row is None or row.app != app.name:
        raise NotFound(f"no decision {decision_id!r} in application {app.name!r}")
    return decision_view(row)
