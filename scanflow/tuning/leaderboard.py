"""The leaderboard of a study: its trials as rows, best first, and the best trial(s)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

    from scanflow.spec.model import Study


def rows(study: optuna.Study, spec: Study) -> list[dict[str, Any]]:
    """One row per trial: number, run, state, values, parameters, duration and reason;
    finished trials first, best first (by the first objective)."""
    sign = 1 if spec.objectives()[0].direction == "minimize" else -1
    table = []
    for t in study.trials:
        duration = (
            (t.datetime_complete - t.datetime_start).total_seconds()
            if t.datetime_complete and t.datetime_start
            else None
        )
        table.append(
            {
                "trial": t.number,
                "run": t.user_attrs.get("run_id", ""),
                "state": t.state.name.lower(),
                "values": list(t.values or []),
                "params": dict(t.params),
                "duration": duration,
                "reason": t.user_attrs.get("reason", ""),
            }
        )
    return sorted(
        table,
        key=lambda r: (r["state"] != "complete", sign * r["values"][0] if r["values"] else 0),
    )


def render(study: optuna.Study, spec: Study) -> str:
    """The leaderboard as text, then the best trial (the Pareto front for several
    objectives)."""
    metrics = ", ".join(o.metric for o in spec.objectives())
    lines = [f"study {spec.name} (workflow {spec.workflow}; {metrics})"]
    lines.append(f"{'trial':>5}  {'state':<9} {'value':>12} {'seconds':>8}  params / reason")
    for row in rows(study, spec):
        value = ", ".join(f"{v:.6g}" for v in row["values"]) or "-"
        secs = f"{row['duration']:.1f}" if row["duration"] is not None else "-"
        params = " ".join(
            f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in row["params"].items()
        )
        reason = f"  ({row['reason']})" if row["reason"] else ""
        lines.append(
            f"{row['trial']:>5}  {row['state']:<9} {value:>12} {secs:>8}  {params}{reason}"
        )
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    if complete:
        for best in study.best_trials:
            values = ", ".join(f"{v:.6g}" for v in best.values)
            lines.append(
                f"best: trial {best.number} (run {best.user_attrs.get('run_id', '')}) "
                f"{metrics}={values} {best.params}"
            )
    return "\n".join(lines)
