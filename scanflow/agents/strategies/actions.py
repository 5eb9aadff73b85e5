"""The actuators of DriftRetrain: retrain through the engine, gate, promote, roll back."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from scanflow.agents.plans import Outcome

if TYPE_CHECKING:
    from scanflow.agents.context import ActionContext
    from scanflow.agents.strategies.drift_retrain import DriftRetrainConfig
    from scanflow.agents.toolkit import Toolkit

log = logging.getLogger(__name__)


def work_dir(toolkit: Toolkit, agent: str) -> Path:
    """Where an agent keeps its files (reference samples, training data)."""
    base = toolkit.extras.get("state_dir")
    if base is None:
        import tempfile

        base = Path(tempfile.gettempdir()) / "scanflow-agents"
    folder = Path(base) / "agents" / agent
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def save_array(folder: Path, name: str, rows: np.ndarray) -> None:
    """Save ``rows`` as ``<folder>/<name>.npy`` (written whole, then renamed)."""
    tmp = folder / f".{name}.npy"
    np.save(tmp, rows)
    tmp.replace(folder / f"{name}.npy")


def load_array(folder: Path, name: str) -> np.ndarray:
    """The array saved as ``name``."""
    return np.load(folder / f"{name}.npy")


def resolve_path(toolkit: Toolkit, path: str) -> Path:
    """``path`` as given when absolute, else relative to the application's folder."""
    project = toolkit.extras.get("project")
    if Path(path).is_absolute() or project is None:
        return Path(path)
    return Path(project.base_dir) / path


def scorer(toolkit: Toolkit) -> Any:
    """How to score a model version: ``toolkit.extras['scorer']`` or MLflow."""
    found = toolkit.extras.get("scorer")
    if found is None:
        from scanflow.agents.clients import MlflowScorer

        found = toolkit.extras["scorer"] = MlflowScorer(toolkit.extras["tracking_uri"])
    return found


# -- retrain ------------------------------------------------------------------------------
def collect(
    ctx: ActionContext, config: DriftRetrainConfig, since: float | None
) -> dict[str, Any] | Outcome:
    """Recent labelled rows split into training and gate parts, saved as ``.npz`` files."""
    from scanflow.agents.strategies.data import labelled

    deadline = time.monotonic() + config.label_wait
    while True:
        predictions, labels = (
            feed.read_new(feed.end(config.collect_bytes))[0]
            for feed in (
                ctx.toolkit.prediction_log(config.service),
                ctx.toolkit.label_feed(config.service),
            )
        )
        recent = [r for r in predictions if since is None or r.get("ts", 0) >= since]
        X, y, _ = labelled(recent, labels)
        if len(y) >= config.min_labelled:
            break
        if time.monotonic() >= deadline:
            return Outcome(
                ok=False,
                message=f"only {len(y)} labelled rows since the drift began after waiting "
                f"{config.label_wait:g}s (min_labelled={config.min_labelled})",
            )
        time.sleep(1.0)
    order = np.random.default_rng(config.seed).permutation(len(y))
    cut = int(len(y) * (1 - config.gate_fraction))
    folder = work_dir(ctx.toolkit, ctx.agent)
    train_path = folder / f"train-{ctx.decision_id[:12]}.npz"
    gate_path = folder / f"gate-{ctx.decision_id[:12]}.npz"
    np.savez_compressed(train_path, X=X[order[:cut]], y=y[order[:cut]])
    np.savez_compressed(gate_path, X=X[order[cut:]], y=y[order[cut:]])
    return {
        "train": str(train_path),
        "gate": str(gate_path),
        "train_rows": cut,
        "gate_rows": len(y) - cut,
    }


def retrain(ctx: ActionContext, config: DriftRetrainConfig, since: float | None) -> Outcome:
    """Run the training workflow on recent labelled data; resume the same run after a crash."""
    registry = ctx.toolkit.model_registry()
    progress = dict(ctx.checkpoint)
    if "data" not in progress:
        data = collect(ctx, config, since)
        if isinstance(data, Outcome):
            return data
        progress = {
            "data": data,
            "before": registry.alias_version(config.model, config.candidate_alias),
        }
        ctx.save(progress)

    if config.tune_study:
        return tune(ctx, config, progress)

    from scanflow.engines.base import follow

    engine = ctx.toolkit.engine_for()
    if "run_id" in progress:
        record = engine.get_run(progress["run_id"])
        if record.status != "succeeded":
            log.info("resuming training run %s", progress["run_id"])
            record = follow(engine, engine.resume(progress["run_id"]))
    else:
        params = {**config.workflow_parameters, config.data_parameter: progress["data"]["train"]}
        if config.alias_parameter:
            params[config.alias_parameter] = config.candidate_alias
        progress["run_id"] = engine.submit(config.workflow, params)
        ctx.save(progress)  # a crash from here on resumes this run
        record = follow(engine, progress["run_id"])
    result = {"run_id": record.id, "run_status": record.status, **progress["data"]}
    if record.status != "succeeded":
        return Outcome(
            ok=False,
            result=result,
            message=f"training run {record.id} {record.status}: {record.error or ''}",
        )
    candidate = registry.alias_version(config.model, config.candidate_alias)
    if candidate is None or candidate == progress.get("before"):
        return Outcome(
            ok=False,
            result=result,
            message=f"training run {record.id} registered no new "
            f"{config.model}@{config.candidate_alias}",
        )
    return Outcome(
        result={**result, "candidate": candidate}, message=f"run {record.id} trained v{candidate}"
    )


def tune(ctx: ActionContext, config: DriftRetrainConfig, progress: dict[str, Any]) -> Outcome:
    """Retrain by tuning: a study of ``tune_trials`` trials (``config.tune_study`` copied
    under a name of its own, resumed after a crash) on the recent labelled rows; the best
    trial's logged model is registered as the candidate."""
    from scanflow.errors import ScanflowError
    from scanflow.tuning.register import register_best
    from scanflow.tuning.study import Tuner, find_study

    project = ctx.toolkit.extras["project"]
    base = find_study(project, None, config.tune_study)
    name = progress.get("study") or f"{base.name}-{ctx.decision_id[:12]}"[:63].strip("-")
    spec = base.model_copy(
        update={"name": name, "max_trials": config.tune_trials, "timeout": config.tune_timeout}
    )
    resume = "study" in progress
    progress["study"] = name
    ctx.save(progress)  # a crash from here on resumes this study
    data = progress["data"]
    tuner = Tuner(
        project,
        spec,
        engine=ctx.toolkit.engine_for(),
        parameters={**config.workflow_parameters, config.data_parameter: data["train"]},
    )
    try:
        study = tuner.run(resume=resume)
        done = register_best(project, spec, study, config.model, alias=config.candidate_alias)
    except ScanflowError as exc:
        return Outcome(ok=False, result={"study": name, **data}, message=f"tuning: {exc}")
    trials = {t.state.name.lower() for t in study.trials}
    result = {
        "study": name,
        "trials": len(study.trials),
        "states": sorted(trials),
        "best_trial": done.trial,
        "best_value": done.value[0],
        "run_id": done.run_id,
        "candidate": done.version,
        **data,
    }
    return Outcome(
        result=result,
        message=f"study {name}: trial {done.trial} of {len(study.trials)} trained v{done.version}",
    )


# -- gate ---------------------------------------------------------------------------------
def gate(ctx: ActionContext, config: DriftRetrainConfig) -> Outcome:
    """Candidate vs champion on the holdout and the recent window; stop the plan if worse."""
    trained = ctx.results["retrain"]
    candidate = trained["candidate"]
    champion = ctx.toolkit.model_registry().alias_version(config.model, config.alias)
    score = scorer(ctx.toolkit)
    recent = np.load(trained["gate"])
    result: dict[str, Any] = {
        "candidate": candidate,
        "champion": champion,
        "recent_rows": int(len(recent["y"])),
    }
    result["candidate_recent"] = score(config.model, candidate, recent["X"], recent["y"])
    checks: list[tuple[str, float, float, float]] = []
    if champion is not None:
        result["champion_recent"] = score(config.model, champion, recent["X"], recent["y"])
        checks.append(
            ("recent", result["candidate_recent"], result["champion_recent"], config.recent_margin)
        )
    if config.holdout_path and champion is not None:
        hold = np.load(resolve_path(ctx.toolkit, config.holdout_path))
        result["candidate_holdout"] = score(
            config.model, candidate, hold["X_holdout"], hold["y_holdout"]
        )
        result["champion_holdout"] = score(
            config.model, champion, hold["X_holdout"], hold["y_holdout"]
        )
        checks.append(
            (
                "holdout",
                result["candidate_holdout"],
                result["champion_holdout"],
                config.holdout_margin,
            )
        )
    elif champion is not None:
        result["holdout"] = "skipped: no holdout_path"
        log.warning("gate of v%s: no holdout_path, only the recent window is compared", candidate)
    failed = [
        f"{name}: {c:.3f} vs {p:.3f} (margin {m:+g})" for name, c, p, m in checks if c - p < m
    ]
    if failed:
        return Outcome(
            stop=True,
            result={**result, "passed": False},
            message=f"candidate v{candidate} rejected, champion v{champion} kept; "
            + "; ".join(failed),
        )
    summary = "; ".join(f"{name}: {c:.3f} vs {p:.3f}" for name, c, p, _ in checks)
    if "holdout" in result:
        summary += "; holdout not checked: no holdout_path"
    return Outcome(
        result={**result, "passed": True},
        message=f"candidate v{candidate} passed the gate ({summary or 'no champion'})",
    )


# -- promote and roll back ---------------------------------------------------------------------
def wait_served(ctx: ActionContext, service: str, version: str, timeout: float) -> str | None:
    """None once ``service`` serves ``version``; else why not: the load failure the service
    lists for that version in ``failed_versions``, or a timeout (with the staging phase)."""
    control = ctx.toolkit.service(service)
    version = str(version)
    baseline = False  # refresh() forgets earlier failures: one listed from now on is new
    try:
        control.refresh()
    except Exception as exc:  # noqa: BLE001 - the service may still pick it up by polling
        log.info("refresh of %s failed: %s", service, exc)
        baseline = True  # then a failure listed at the first answer predates this wait
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    stale: Any = None
    while time.monotonic() < deadline:
        last = control.status()
        if str(last.get("model_version")) == version:
            return None
        failure = (last.get("failed_versions") or {}).get(version)
        if baseline and last.get("reachable", True):
            stale, baseline = failure, False
        elif failure and failure != stale:
            return f"the service could not load v{version}: {failure.get('error')}"
        time.sleep(0.2)
    staging = last.get("staging") or {}
    doing = f"v{staging['version']} {staging['phase']}; " if staging.get("version") else ""
    return (
        f"the service still serves v{last.get('model_version')} after {timeout:g}s "
        f"({doing}last error: {last.get('last_error') or last.get('error') or 'none'})"
    )


def promote(ctx: ActionContext, config: DriftRetrainConfig) -> Outcome:
    """Move the alias to the candidate; move it back if the service cannot serve it."""
    registry = ctx.toolkit.model_registry()
    candidate = ctx.results["retrain"]["candidate"]
    previous = ctx.checkpoint.get("previous") or registry.alias_version(config.model, config.alias)
    ctx.save({"previous": previous})
    registry.set_alias(config.model, config.alias, candidate)
    problem = wait_served(ctx, config.service, candidate, config.swap_timeout)
    if problem is None:
        return Outcome(
            result={"version": candidate, "previous": previous, "live_at": time.time()},
            message=f"v{candidate} serves as {config.model}@{config.alias}",
        )
    if previous is not None:
        registry.set_alias(config.model, config.alias, previous)
        wait_served(ctx, config.service, previous, config.swap_timeout)
    return Outcome(
        ok=False,
        result={"version": candidate, "previous": previous, "rolled_back": previous is not None},
        message=f"{problem}; alias {config.alias} rolled back to v{previous}",
    )


def rollback(
    ctx: ActionContext, config: DriftRetrainConfig, to: str, version: str | None
) -> Outcome:
    """Point the alias back at ``to`` and wait for the service to serve it."""
    ctx.toolkit.model_registry().set_alias(config.model, config.alias, to)
    problem = wait_served(ctx, config.service, to, config.swap_timeout)
    if problem is not None:
        return Outcome(ok=False, message=problem, result={"to": to})
    return Outcome(
        result={"to": to, "from": version, "live_at": time.time()},
        message=f"rolled back from v{version} to v{to}",
    )
