"""DriftRetrain: confirmed drift -> retrain on recent labelled data -> gate -> promote ->
watch live quality and roll back.

- **Monitor**: the ``traffic`` sensor reads only the prediction-log records and labels that
  are new since its watermark and tests each full window against a reference sample
  (:mod:`scanflow.agents.strategies.traffic`).
- **Analyse and plan**: :func:`confirm` (k of the last n windows drifted) and
  :func:`quality_dropped`, pure functions of the facts.
- **Execute**: ``retrain`` runs the training workflow through the engine with the recent
  labelled rows (it resumes the same run after a crash), or, with ``tune_study``, a study of
  ``tune_trials`` trials whose best trial's model becomes the candidate; ``gate`` compares
  candidate and champion on the holdout and on a recent labelled window the training did
  not see; ``promote`` moves the alias, waits for the service to serve the new version and
  moves the alias back if it does not; ``rollback`` restores the previous champion.
- **Guardrails**: a cooldown between retrainings and a cap per day.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from pydantic import Field, model_validator

from scanflow.agents.declare import Registry, import_object
from scanflow.agents.facts import Facts, Reading
from scanflow.agents.guards import Guardrails
from scanflow.agents.plans import Decision, decide
from scanflow.agents.state import OPEN
from scanflow.agents.strategies.base import Strategy, StrategyConfig

log = logging.getLogger(__name__)


class DriftRetrainConfig(StrategyConfig):
    """Options of DriftRetrain."""

    service: str
    model: str
    alias: str = "champion"
    candidate_alias: str = "candidate"
    workflow: str = "train"
    data_parameter: str = Field(default="recent_data", description="workflow parameter: .npz path")
    alias_parameter: str | None = Field(
        default="alias", description="workflow parameter naming the alias to register under"
    )
    workflow_parameters: dict[str, Any] = Field(default_factory=dict)
    tune_study: str | None = Field(
        default=None,
        description="a study under 'tuning:' to run instead of one training run; the best "
        "trial's logged model becomes the candidate (trials get no alias parameter)",
    )
    tune_trials: int = Field(default=4, ge=1, description="trials of a tuning retrain")
    tune_timeout: float | None = Field(
        default=900.0, gt=0, description="seconds a tuning retrain may start trials for"
    )
    window_rows: int = Field(default=200, ge=10)
    reference_rows: int = Field(default=500, ge=10)
    k: int = Field(default=2, ge=1, description="drifted windows among the last n")
    n: int = Field(default=3, ge=1)
    min_score: float = Field(
        default=0.1, ge=0, le=1, description="share of features a drifted window needs"
    )
    detector: str | None = Field(default=None, description="'module:function' drift test")
    min_labelled: int = Field(default=300, ge=10, description="recent labelled rows to retrain")
    label_wait: float = Field(default=120.0, ge=0, description="seconds to wait for labels")
    gate_fraction: float = Field(default=0.3, gt=0, lt=1)
    recent_margin: float = Field(default=0.02, description="candidate - champion, recent data")
    holdout_margin: float = Field(default=-0.02, description="candidate - champion, holdout")
    holdout_path: str | None = Field(default=None, description=".npz with X_holdout, y_holdout")
    swap_timeout: float = Field(default=60.0, gt=0)
    min_live_rows: int = Field(default=200, ge=1)
    live_tolerance: float = Field(default=0.05, ge=0)
    approval: bool = Field(
        default=False, description="a person approves each retraining on the dashboard first"
    )
    cooldown: float = Field(default=300.0, ge=0)
    max_actions_per_day: int | None = Field(default=6, ge=0)
    interval: float = Field(default=2.0, gt=0)
    seed: int = 0
    start: Literal["latest", "earliest"] = Field(
        default="latest",
        description="where a first reading begins: the newest records (at most "
        "max_read_bytes of them) or the whole log",
    )
    max_read_bytes: int = Field(
        default=4 * 2**20, ge=4096, description="bytes of log read per tick; the rest waits"
    )
    collect_bytes: int = Field(
        default=64 * 2**20, ge=4096, description="newest bytes of log retraining data comes from"
    )

    @model_validator(mode="after")
    def _k_of_n(self) -> DriftRetrainConfig:
        if self.k > self.n:
            raise ValueError(f"k={self.k} drifted windows cannot be more than the last n={self.n}")
        return self


# -- analysis (pure) ------------------------------------------------------------------------
def recent_windows(facts: Facts, sensor: str = "traffic") -> list[dict[str, Any]]:
    """Every window in the sensor's history, oldest first."""
    return [w for reading in facts.history.get(sensor, []) for w in reading.get("windows", [])]


def drifted(window: dict[str, Any], min_score: float = 0.0) -> bool:
    """Whether a window counts as drifted: the test says so and its score is high enough."""
    return bool(window.get("drift")) and float(window.get("score") or 0.0) >= min_score


def confirm(
    windows: list[dict[str, Any]], k: int, n: int, min_score: float = 0.0
) -> dict[str, Any] | None:
    """Evidence of confirmed drift when ``k`` of the last ``n`` windows (against the latest
    reference) drifted with a score of at least ``min_score``, else None."""
    if not windows:
        return None
    current = [w for w in windows if w["reference"] == windows[-1]["reference"]][-n:]
    drifted_windows = [w for w in current if drifted(w, min_score)]
    if len(current) < k or len(drifted_windows) < k or not drifted(current[-1], min_score):
        return None
    return {
        "drifted_windows": len(drifted_windows),
        "windows": len(current),
        "k": k,
        "n": n,
        "score": current[-1].get("score"),
        "scores": [w.get("score") for w in current],
        "p_min": current[-1].get("p_min"),
        "onset": drifted_windows[0].get("start"),
        "reference": current[-1]["reference"],
        "version": current[-1].get("version"),
        "min_score": min_score,
        "threshold": current[-1].get("threshold"),
        "per_feature": current[-1].get("per_feature") or [],
        "window_scores": [
            {k: w.get(k) for k in ("start", "end", "rows", "score", "p_min", "drift")}
            for w in current
        ],
    }


def latest_quality(facts: Facts, sensor: str = "traffic") -> dict[str, Any]:
    """The newest per-version live quality the sensor reported."""
    for reading in reversed(list(facts.history.get(sensor, []))):
        if "quality" in reading:
            return reading["quality"]
    return {}


def quality_dropped(facts: Facts, config: DriftRetrainConfig) -> Decision | None:
    """A rollback when the last promoted version does worse live than the champion it
    replaced did on the same recent data (measured by the gate), by more than
    ``live_tolerance``."""
    promoted = facts.last_decision("retrain")
    if promoted is None or "promote" not in promoted["results"]:
        return None
    result = promoted["results"]["promote"]
    version, previous = result.get("version"), result.get("previous")
    if not version or not previous:
        return None
    for later in facts.decisions:
        if later["action"] == "rollback" and later["created_at"] > promoted["created_at"]:
            return None
    live = latest_quality(facts).get(version)
    gate = promoted["results"].get("gate", {})
    baseline = gate.get("champion_recent")
    if live is None or baseline is None or live["total"] < config.min_live_rows:
        return None
    if live["accuracy"] >= baseline - config.live_tolerance:
        return None
    return decide(
        f"live accuracy of v{version} {live['accuracy']:.3f} < {baseline:.3f} of v{previous} "
        f"on the same drift - {config.live_tolerance:g}",
        ("rollback", {"to": previous, "version": version}),
        key="rollback",
        evidence={
            "live_accuracy": live["accuracy"],
            "live_rows": live["total"],
            "baseline_accuracy": baseline,
            "gate_accuracy": gate.get("candidate_recent"),
            "tolerance": config.live_tolerance,
            "version": version,
            "previous": previous,
        },
        correlation_id=promoted["id"],
    )


def _read(
    feed: Any, mark: dict[str, Any], key: str, config: DriftRetrainConfig
) -> tuple[list[dict[str, Any]], Any]:
    """What is new in ``feed`` since the watermark's cursor ``key``, bounded by
    ``max_read_bytes``; a first read starts where ``config.start`` says."""
    cursor = mark.get(key)
    if key not in mark and config.start == "latest":
        cursor = feed.end(config.max_read_bytes)
    return feed.read_new(cursor, config.max_read_bytes)


class DriftRetrain(Strategy):
    """Retrain, gate and promote on confirmed drift; roll back when live quality drops."""

    name = "drift-retrain"
    Config = DriftRetrainConfig
    config: DriftRetrainConfig

    def guardrails(self) -> Guardrails:
        return Guardrails(
            cooldowns={"retrain": self.config.cooldown, "rollback": 0.0},
            max_actions_per_day=self.config.max_actions_per_day,
        )

    def declare(self) -> Registry:
        from scanflow.agents.strategies import actions

        reg = Registry()
        config = self.config
        detector = import_object(config.detector) if config.detector else None

        @reg.sensor(name="traffic", keep=max(60, config.n * 4))
        def traffic(ctx: Any) -> Reading:
            from scanflow.agents.strategies.detect import default_detector
            from scanflow.agents.strategies.traffic import advance

            folder = actions.work_dir(ctx.toolkit, ctx.agent)
            mark = ctx.watermark or {}
            predictions, pcursor = _read(
                ctx.toolkit.prediction_log(config.service), mark, "predictions_cursor", config
            )
            labels, lcursor = _read(
                ctx.toolkit.label_feed(config.service), mark, "labels_cursor", config
            )
            facts, nxt = advance(
                mark,
                predictions,
                labels,
                window_rows=config.window_rows,
                reference_rows=config.reference_rows,
                detector=detector or default_detector(),
                save_reference=lambda ident, rows: actions.save_array(folder, ident, rows),
                load_reference=lambda ident: actions.load_array(folder, ident),
            )
            nxt.update(predictions_cursor=pcursor, labels_cursor=lcursor)
            return Reading(facts, watermark=nxt)

        @reg.rule(name="confirmed_drift")
        def confirmed_drift(facts: Facts) -> Decision | None:
            reading = facts.get("traffic") or {}
            if not facts.is_new("traffic") or not reading.get("windows"):
                return None
            evidence = confirm(recent_windows(facts), config.k, config.n, config.min_score)
            if evidence is None:
                return None
            for past in facts.decisions:
                handled = past["status"] in OPEN or "promote" in past["results"]
                if (
                    past["action"] == "retrain"
                    and handled
                    and past["evidence"].get("reference") == evidence["reference"]
                ):
                    return None  # this reference's drift is being (or was) handled
            return decide(
                f"drift in {evidence['drifted_windows']} of the last {evidence['windows']} "
                f"windows (k={config.k}, n={config.n})",
                ("retrain", {"since": evidence["onset"]}),
                ("gate", {}),
                ("promote", {}),
                key="retrain",
                evidence={**evidence, "detected_at": facts.now},
                approval=config.approval,
            )

        @reg.rule(name="live_quality")
        def live_quality(facts: Facts) -> Decision | None:
            return quality_dropped(facts, config)

        reg.actuator(name="retrain", timeout=None)(
            lambda ctx, since=None: actions.retrain(ctx, config, since)
        )
        reg.actuator(name="gate", timeout=600)(lambda ctx: actions.gate(ctx, config))
        reg.actuator(name="promote", timeout=config.swap_timeout + 60)(
            lambda ctx: actions.promote(ctx, config)
        )
        reg.actuator(name="rollback", timeout=config.swap_timeout + 60)(
            lambda ctx, to, version=None: actions.rollback(ctx, config, to, version)
        )
        return reg
