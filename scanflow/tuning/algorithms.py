"""Optuna samplers and pruners from a study's ``algorithm`` and ``pruner``."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from scanflow.tuning.space import grid

if TYPE_CHECKING:
    import optuna

    from scanflow.spec.model import Pruner, Study


def sampler(study: Study, done: int = 0) -> optuna.samplers.BaseSampler:
    """The sampler of ``study.algorithm``, seeded with ``study.seed`` plus ``done`` (the
    trials already in the study, so a resumed study does not draw the same values again)."""
    import optuna

    seed = None if study.seed is None else study.seed + done
    if study.algorithm == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if study.algorithm == "grid":
        return optuna.samplers.GridSampler(grid(study.space), seed=seed)
    if study.algorithm == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    if study.algorithm == "qmc":
        with warnings.catch_warnings():  # stable in practice; optuna still marks it experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.QMCSampler(seed=seed, warn_independent_sampling=False)
    return optuna.samplers.TPESampler(seed=seed)  # also multi-objective


def pruner(spec: Pruner) -> optuna.pruners.BasePruner:
    """The pruner ``spec`` describes."""
    import optuna

    if spec.type == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=spec.startup_trials, n_warmup_steps=spec.warmup_steps
        )
    if spec.type == "percentile":
        return optuna.pruners.PercentilePruner(
            spec.percentile, n_startup_trials=spec.startup_trials, n_warmup_steps=spec.warmup_steps
        )
    if spec.type == "successive-halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=spec.min_resource)
    if spec.type == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=spec.min_resource, max_resource=spec.max_resource or "auto"
        )
    return optuna.pruners.NopPruner()
