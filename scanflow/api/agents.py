"""Agents of an application: liveness, open plans, and their decisions with evidence.

The agents' runtime has no pause: an agent runs while its process runs (stop it with
Ctrl-C on ``scanflow agents up``).
"""

from __future__ import annotations

import time

from scanflow.api.errors import NotFound
from scanflow.api.views import AgentView, DecisionView
from scanflow.api.workspace import AppHandle, store_errors
from scanflow.store.agent_models import DecisionRecord

ALIVE_SECONDS = 15.0


def list_agents(app: AppHandle) -> list[AgentView]:
    """Every declared agent with where it runs and whether its heartbeat is recent."""
    from scanflow.agents.state import AgentState, endpoints

    with store_errors(f"application {app.name!r}"):
        found = {ep.agent: ep for ep in endpoints(app.store)}
        out = []
        for agent in app.project.app.agents:
            ep = found.get(agent.name)
            state = AgentState(app.store, agent.name)
            out.append(
                AgentView(
                    app=app.name,
                    name=agent.name,
                    role=agent.role,
                    strategy=agent.strategy,
                    url=ep.url if ep else None,
                    pid=ep.pid if ep else None,
                    alive=bool(ep and time.time() - ep.heartbeat_at < ALIVE_SECONDS),
                    heartbeat_at=ep.heartbeat_at if ep else None,
                    open_decisions=len(state.open_decisions()),
                    dead_letters=len(state.outbox("dead")),
                )
            )
    return out


def decision_view(row: DecisionRecord) -> DecisionView:
    return DecisionView(
        id=row.id,
        app=row.app,
        agent=row.agent,
        rule=row.rule,
        action=row.action,
        reason=row.reason,
        status=row.status,
        evidence=row.evidence or {},
        steps=list(row.steps or []),
        outcome=row.outcome,
        created_at=row.created_at,
        finished_at=row.finished_at,
        mlflow_run_id=row.mlflow_run_id,
    )


def decisions(app: AppHandle, agent: str | None = None, limit: int = 100) -> list[DecisionView]:
    """The newest decisions of ``app``'s agents (or one agent) first."""
    from scanflow.agents.state import all_decisions

    with store_errors(f"application {app.name!r}"):
        rows = all_decisions(app.store, agent, limit=limit)
    return [decision_view(r) for r in reversed(rows) if r.app == app.name]


def decision(app: AppHandle, decision_id: str) -> DecisionView:
    """Decision ``decision_id`` with its evidence and plan."""
    with store_errors(f"application {app.name!r}"), app.store.session() as s:
        row = s.get(DecisionRecord, decision_id)
    if row is None or row.app != app.name:
        raise NotFound(f"no decision {decision_id!r} in application {app.name!r}")
    return decision_view(row)
