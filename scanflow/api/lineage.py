"""A decision's lineage: data window -> drift evidence -> decision -> retrain run -> gate ->
alias move -> served version -> outcome, each link with its evidence; and what a person
does about a decision: approve or reject a plan that waits for one, revert an alias move.

A person's act is recorded as a decision of its own (rule ``person``) linked to the one it
acts on by ``correlation_id``, so the audit trail holds who did what and when.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from sqlalchemy import select

from scanflow.api import agents as agents_api
from scanflow.api import models as models_api
from scanflow.api.errors import Conflict
from scanflow.api.views import ActionResult, DecisionView, Lineage, LineageStep
from scanflow.api.workspace import AppHandle, store_errors
from scanflow.store.agent_models import DecisionRecord

log = logging.getLogger(__name__)

STATE = {"done": "ok", "failed": "bad", "skipped": "idle", "pending": "wait", "running": "wait"}
DECISION_STATE = {"awaiting": "wait", "approved": "wait", "blocked": "idle", "rejected": "bad"}
KINDS = {"retrain": "retrain", "gate": "gate", "promote": "alias", "rollback": "alias"}


def _num(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, int | float) else str(value)


def _config(app: AppHandle, agent: str) -> dict[str, Any]:
    for declared in app.project.app.agents:
        if declared.name == agent:
            return dict(declared.config)
    return {}


def _followups(app: AppHandle, decision_id: str) -> list[DecisionView]:
    with store_errors(f"application {app.name!r}"), app.store.session() as s:
        rows = s.scalars(
            select(DecisionRecord)
            .where(DecisionRecord.app == app.name, DecisionRecord.correlation_id == decision_id)
            .order_by(DecisionRecord.created_at)
        ).all()
    return [agents_api.decision_view(r) for r in rows]


def _data_and_drift(d: DecisionView) -> list[LineageStep]:
    e = d.evidence
    out = []
    if "window_scores" in e or "onset" in e:
        windows = e.get("window_scores") or []
        rows = sum(int(w.get("rows") or 0) for w in windows)
        out.append(
            LineageStep(
                kind="data",
                title="data window",
                state="ok",
                at=e.get("onset"),
                summary=f"{len(windows)} window(s), {rows} predictions, against reference "
                f"{e.get('reference')} of v{e.get('version')}",
                evidence={k: e.get(k) for k in ("onset", "reference", "version", "window_scores")},
            )
        )
    if "score" in e or "per_feature" in e:
        out.append(
            LineageStep(
                kind="drift",
                title="drift evidence",
                state="bad",
                at=e.get("detected_at"),
                summary=f"{e.get('drifted_windows')} of the last {e.get('windows')} windows "
                f"drifted (k={e.get('k')}, n={e.get('n')}); share of drifted features "
                f"{_num(e.get('score'))} (min {_num(e.get('min_score'))}), smallest p "
                f"{_num(e.get('p_min'))}",
                evidence={
                    k: e.get(k)
                    for k in ("per_feature", "threshold", "min_score", "k", "n", "scores", "p_min")
                },
            )
        )
    return out


def _served(app: AppHandle, d: DecisionView, version: str, after: float) -> LineageStep:
    from scanflow.api.service_history import served_versions

    service = _config(app, d.agent).get("service")
    spans = served_versions(app.project.state_dir, service) if service else []
    span = next((s for s in spans if s.version == version and s.last_at >= after), None)
    if span is None:
        return LineageStep(
            kind="served",
            title=f"served v{version}",
            state="wait",
            at=None,
            summary="no prediction of this version logged yet",
            link=f"/apps/{app.name}/services/{service}" if service else None,
        )
    return LineageStep(
        kind="served",
        title=f"served v{version}",
        state="ok",
        at=span.first_at,
        summary=f"{span.predictions} predictions logged by {service} from v{version}",
        evidence=span.model_dump(),
        link=f"/apps/{app.name}/services/{service}",
    )


def _plan(app: AppHandle, d: DecisionView) -> list[LineageStep]:
    out = []
    model = _config(app, d.agent).get("model")
    for step in d.steps:
        action, result = step.get("action", "?"), step.get("result") or {}
        kind = KINDS.get(action, action)
        link = None
        if action == "retrain" and result.get("run_id"):
            link = f"/apps/{app.name}/runs/{result['run_id']}"
        elif kind == "alias" and model:
            link = f"/apps/{app.name}/models/{model}"
        title = {"retrain": "retrain run", "gate": "gate result", "alias": "alias move"}
        out.append(
            LineageStep(
                kind=kind,
                title=title.get(kind, action),
                state=STATE.get(step.get("status", ""), "idle"),
                at=step.get("started_at"),
                summary=step.get("message") or step.get("status", ""),
                evidence={"params": step.get("params") or {}, "result": result},
                link=link,
            )
        )
        moved = result.get("version") if action == "promote" else result.get("to")
        if kind == "alias" and step.get("status") == "done" and moved:
            out.append(_served(app, d, str(moved), step.get("started_at") or d.created_at))
    return out


def _revert_move(app: AppHandle, d: DecisionView) -> dict[str, Any] | None:
    """The alias move that undoes ``d``'s own (None when it moved none)."""
    config = _config(app, d.agent)
    for step in d.steps:
        result = step.get("result") or {}
        if step.get("status") != "done" or not config.get("model"):
            continue
        if step.get("action") == "promote" and result.get("previous"):
            back, now = result["previous"], result["version"]
        elif step.get("action") == "rollback" and result.get("from"):
            back, now = result["from"], result["to"]
        else:
            continue
        alias = config.get("alias", "champion")
        return {"model": config["model"], "alias": alias, "from": str(now), "to": str(back)}
    return None


def lineage(app: AppHandle, decision_id: str) -> Lineage:
    """Decision ``decision_id`` as a chain of evidence, with its follow-ups."""
    d = agents_api.decision(app, decision_id)
    followups = _followups(app, d.id)
    steps = _data_and_drift(d)
    steps.append(
        LineageStep(
            kind="decision",
            title=f"decision: {d.action}",
            state=DECISION_STATE.get(d.status, "ok"),
            at=d.created_at,
            summary=d.reason
            + (" — waits for a person's approval" if d.status == "awaiting" else ""),
            evidence={"rule": d.rule, "agent": d.agent, "status": d.status, "reason": d.reason},
        )
    )
    steps += _plan(app, d)
    later = [f for f in followups if f.action in ("rollback", "revert")]
    if d.finished_at is not None or later:
        bad = d.status == "failed" or bool(later)
        text = d.outcome or d.status
        if later:
            text += "; then " + "; ".join(f"{f.action} by {f.rule}: {f.reason}" for f in later)
        steps.append(
            LineageStep(
                kind="outcome",
                title="outcome",
                state="bad" if bad else "ok",
                at=later[-1].created_at if later else d.finished_at,
                summary=text,
                evidence={"outcome": d.outcome, "later": [f.model_dump() for f in later]},
            )
        )
    move = _revert_move(app, d)
    reverted = any(f.rule == "person" and f.action in ("rollback", "revert") for f in followups)
    return Lineage(
        decision=d,
        steps=steps,
        followups=followups,
        can_approve=d.status == "awaiting",
        can_revert=move is not None and not reverted,
        revert=move,
    )


def _record_person(
    app: AppHandle,
    d: DecisionView,
    action: str,
    reason: str,
    who: str,
    result: dict[str, Any],
    evidence: dict[str, Any] | None = None,
) -> str:
    now = time.time()
    row = DecisionRecord(
        id=uuid.uuid4().hex,
        app=app.name,
        agent=d.agent,
        rule="person",
        action=action,
        key="person",
        reason=reason,
        status="succeeded",
        guarded=False,
        evidence={"by": who, "decision": d.id, **(evidence or {})},
        steps=[{"action": action, "params": {}, "status": "done", "result": result}],
        outcome=reason,
        correlation_id=d.id,
        created_at=now,
        started_at=now,
        finished_at=now,
    )
    with store_errors(f"application {app.name!r}"), app.store.session() as s:
        s.add(row)
    return row.id


def _settle(app: AppHandle, d: DecisionView, to: str, **fields: Any) -> None:
    """Move awaiting decision ``d`` to status ``to``, or :class:`Conflict` when it no longer
    awaits (another person, or the agent, got there first)."""
    from scanflow.agents.state import transition

    with store_errors(f"application {app.name!r}"):
        moved = transition(app.store, d.id, "awaiting", status=to, **fields)
    if not moved:
        now = agents_api.decision(app, d.id).status
        raise Conflict(f"decision {d.id} is {now}; only an awaiting plan can be {to}")


def approve(app: AppHandle, decision_id: str, who: str) -> ActionResult:
    """Let the agent carry out a plan that waits for a person (it starts within seconds)."""
    d = agents_api.decision(app, decision_id)
    _settle(app, d, "approved")
    _record_person(app, d, "approve", f"approved by {who}", who, {"approved": d.id})
    log.info("decision %s of %s approved by %s", d.id, d.agent, who)
    return ActionResult(message=f"decision {d.id[:8]} approved: agent {d.agent} carries it out")


def reject(app: AppHandle, decision_id: str, who: str, reason: str | None = None) -> ActionResult:
    """Refuse a plan that waits for a person: it never runs; ``reason`` is kept as evidence."""
    d = agents_api.decision(app, decision_id)
    said = f"rejected by {who}" + (f": {reason}" if reason else "")
    skipped = [{**step, "status": "skipped"} for step in d.steps]
    _settle(app, d, "rejected", steps=skipped, outcome=said, finished_at=time.time())
    _record_person(app, d, "reject", said, who, {"rejected": d.id}, {"reason": reason})
    log.info("decision %s of %s %s", d.id, d.agent, said)
    return ActionResult(message=f"decision {d.id[:8]} rejected: agent {d.agent} will not run it")


def revert(app: AppHandle, decision_id: str, who: str) -> ActionResult:
    """Undo a decision's alias move: point the alias back where it was."""
    view = lineage(app, decision_id)
    move = view.revert
    if move is None:
        raise Conflict(f"decision {decision_id} moved no alias: there is nothing to revert")
    if not view.can_revert:
        raise Conflict(f"decision {decision_id} was already reverted")
    current = models_api.get_model(app, move["model"]).aliases.get(move["alias"])
    if current != move["from"]:
        raise Conflict(
            f"{move['model']}@{move['alias']} now points at v{current}, not v{move['from']} "
            "that this decision set; move it on the model's page instead"
        )
    models_api.move_alias(app, move["model"], move["alias"], move["to"])
    action = (
        "rollback" if any(s.get("action") == "promote" for s in view.decision.steps) else "revert"
    )
    reason = (
        f"{move['model']}@{move['alias']} moved back from v{move['from']} to v{move['to']} by {who}"
    )
    result = {"to": move["to"], "from": move["from"]}
    _record_person(app, view.decision, action, reason, who, result)
    log.info("%s", reason)
    return ActionResult(message=reason)
