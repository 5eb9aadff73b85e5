"""What the demo shows: a timeline (event, time, evidence), a summary, and a plot."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scanflow.agents.demo.traffic import Sample


@dataclass(frozen=True)
class Moment:
    """One line of the timeline."""

    at: float
    source: str
    event: str
    evidence: str = ""


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def decision_moments(decisions: Sequence[Any]) -> list[Moment]:
    """Timeline lines for the agents' decisions and the steps of their plans."""
    moments = []
    for d in decisions:
        ev = d.evidence or {}
        keys = (
            "score",
            "drifted_windows",
            "windows",
            "p95_ms",
            "rps",
            "workers",
            "target",
            "live_accuracy",
        )
        shown = ", ".join(f"{k}={_fmt(ev[k])}" for k in keys if ev.get(k) is not None)
        if d.status == "blocked":
            moments.append(
                Moment(
                    d.created_at,
                    d.agent,
                    f"holds {d.action} back: {d.outcome}",
                    f"{d.reason}; {shown}" if shown else d.reason,
                )
            )
            continue
        moments.append(Moment(d.created_at, d.agent, f"decides {d.action}: {d.reason}", shown))
        for step in d.steps:
            if step.get("finished_at") and step.get("status") in ("done", "failed"):
                moments.append(
                    Moment(
                        step["finished_at"],
                        d.agent,
                        f"{step['action']} {step['status']}",
                        step.get("message") or "",
                    )
                )
    return moments


def accuracy(samples: Sequence[Sample]) -> float | None:
    """Share of correct answers among answered requests."""
    answered = [s for s in samples if s.status == 200]
    return sum(s.correct for s in answered) / len(answered) if answered else None


def summarise(
    samples: Sequence[Sample],
    drift_at: float,
    decisions: Sequence[Any],
    workers: Sequence[tuple[float, int]],
) -> dict[str, Any]:
    """Detection delay, time to the new model live, accuracy before/after, failures."""
    retrain = next(
        (d for d in decisions if d.action == "retrain" and d.created_at >= drift_at), None
    )
    detected = (
        None if retrain is None else (retrain.evidence or {}).get("detected_at", retrain.created_at)
    )
    promoted = None
    if retrain is not None:
        promote: dict[str, Any] = next((s for s in retrain.steps if s["action"] == "promote"), {})
        promoted = (promote.get("result") or {}).get("version")
    first_new = next((s.at for s in samples if promoted and s.version == str(promoted)), None)
    old = [s for s in samples if s.drifted and (not promoted or s.version != str(promoted))]
    new = [s for s in samples if s.drifted and promoted and s.version == str(promoted)]
    return {
        "detected_at": detected,
        "new_model_live_at": first_new,
        "requests": len(samples),
        "failed_requests": sum(1 for s in samples if s.status != 200),
        "detection_delay_s": None if detected is None else detected - drift_at,
        "time_to_new_model_live_s": (
            None if detected is None or first_new is None else first_new - detected
        ),
        "accuracy_before_drift": accuracy([s for s in samples if not s.drifted]),
        "accuracy_drifted_old_model": accuracy(old),
        "accuracy_drifted_new_model": accuracy(new),
        "new_version": promoted,
        "retrain_outcome": None if retrain is None else f"{retrain.status}: {retrain.outcome}",
        "max_workers": max((n for _, n in workers), default=None),
        "workers_at_end": workers[-1][1] if workers else None,
        "scale_decisions": [
            (d.evidence or {}).get("target")
            for d in decisions
            if d.action == "scale" and d.status == "succeeded"
        ],
    }


def series(
    samples: Sequence[Sample], start: float, width: float = 2.0
) -> tuple[list[float], list[float]]:
    """Accuracy per ``width``-second bin, times relative to ``start``."""
    bins: dict[int, list[Sample]] = {}
    for s in samples:
        bins.setdefault(int((s.at - start) // width), []).append(s)
    xs, ys = [], []
    for key in sorted(bins):
        value = accuracy(bins[key])
        if value is not None:
            xs.append(key * width + width / 2)
            ys.append(value)
    return xs, ys


def plot(
    path: Path,
    samples: Sequence[Sample],
    start: float,
    drift_scores: Sequence[tuple[float, float]],
    workers: Sequence[tuple[float, int]],
    marks: Sequence[tuple[float, str]],
) -> Path:
    """Accuracy, drift score and workers over time, with the timeline's key moments."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 1, figsize=(10, 7.5), sharex=True)
    xs, ys = series(samples, start)
    axes[0].plot(xs, ys, color="tab:blue")
    axes[0].set_ylabel("live accuracy")
    axes[0].set_ylim(0, 1.05)
    axes[1].plot(
        [t - start for t, _ in drift_scores], [v for _, v in drift_scores], ".-", color="tab:red"
    )
    axes[1].set_ylabel("drift score\n(share of features)")
    axes[1].set_ylim(-0.05, 1.05)
    axes[2].step(
        [t - start for t, _ in workers], [n for _, n in workers], where="post", color="tab:green"
    )
    axes[2].set_ylabel("workers")
    axes[2].set_xlabel("seconds since traffic began")
    top = max((n for _, n in workers), default=1)
    axes[2].set_ylim(0, top + 1)
    axes[2].yaxis.get_major_locator().set_params(integer=True)
    for at, label in marks:
        for ax in axes:
            ax.axvline(at - start, color="grey", linestyle=":", linewidth=1)
        axes[0].annotate(
            label,
            (at - start, 1.02),
            rotation=90,
            fontsize=7,
            va="top",
            ha="right",
            color="dimgrey",
        )
    fig.suptitle("Scanflow closed loop: drift -> retrain -> promote; load -> scale")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
