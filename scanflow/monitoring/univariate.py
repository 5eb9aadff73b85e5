"""Per-feature drift: Kolmogorov-Smirnov for continuous features, chi-squared for
categorical ones, with a multiple-testing correction across features."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from scanflow.monitoring.base import as_summary, check_alpha
from scanflow.monitoring.errors import MonitoringError
from scanflow.monitoring.profile import CATEGORICAL, CONTINUOUS, ReferenceProfile
from scanflow.monitoring.result import DriftResult, FeatureDrift
from scanflow.monitoring.stats import CORRECTIONS, adjust_pvalues, chi2_from_counts, ks_from_cells
from scanflow.monitoring.summary import Summary

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeatureDriftDetector:
    """Tests every feature and combines the verdicts.

    Each feature drifts when its corrected p-value is below ``alpha``. The data set drifts
    when any feature does (``drift_share=None``) or when at least ``drift_share`` of the
    features do. ``correction``: ``bh`` (Benjamini-Hochberg), ``bonferroni`` or ``none``.
    ``correction="none", drift_share=0.5`` is Evidently's data-drift preset rule.
    """

    alpha: float = 0.05
    correction: str = "bh"
    drift_share: float | None = None
    name: str = "features"

    def __post_init__(self) -> None:
        check_alpha(self.alpha)
        if self.correction not in CORRECTIONS:
            raise MonitoringError(
                f"unknown multiple-testing correction {self.correction!r}; use one of "
                f"{', '.join(CORRECTIONS)}"
            )
        if self.drift_share is not None and not 0.0 < self.drift_share <= 1.0:
            raise MonitoringError(f"drift_share must be in (0, 1], got {self.drift_share}")

    def check(self, profile: ReferenceProfile, current: Any) -> DriftResult:
        """Compare ``current`` (window, summary or rows) with the reference profile."""
        summary = as_summary(profile, current)
        return self.compare(profile, summary)

    def compare(self, profile: ReferenceProfile, summary: Summary) -> DriftResult:
        """Compare two summaries laid out by ``profile`` (reference first)."""
        ref = profile.reference
        ks_stat, ks_p = ks_from_cells(ref.continuous[:, :-1], summary.continuous[:, :-1])
        chi_stat, _, chi_p, fisher = chi2_from_counts(
            ref.categorical[:, :-1], summary.categorical[:, :-1]
        )
        names = [*profile.continuous_names, *profile.categorical_names]
        kinds = [CONTINUOUS] * len(ks_stat) + [CATEGORICAL] * len(chi_stat)
        tests = ["ks"] * len(ks_stat) + ["fisher" if f else "chi2" for f in fisher]
        stats = np.concatenate([ks_stat, chi_stat])
        p = np.concatenate([ks_p, chi_p])
        adjusted = adjust_pvalues(p, self.correction)
        drift = adjusted < self.alpha
        n_ref = np.concatenate([ref.continuous[:, :-1].sum(1), ref.categorical[:, :-1].sum(1)])
        n_cur = np.concatenate(
            [summary.continuous[:, :-1].sum(1), summary.categorical[:, :-1].sum(1)]
        )
        order = {name: i for i, name in enumerate(profile.names)}
        features = sorted(
            (
                FeatureDrift(
                    feature=names[i],
                    kind=kinds[i],
                    test=tests[i],
                    statistic=float(stats[i]),
                    threshold=self.alpha,
                    drift=bool(drift[i]),
                    p_value=float(p[i]),
                    adjusted_p_value=float(adjusted[i]),
                    n_reference=int(n_ref[i]),
                    n_current=int(n_cur[i]),
                )
                for i in range(len(names))
            ),
            key=lambda f: order[f.feature],
        )
        share = float(drift.mean()) if drift.size else 0.0
        if self.drift_share is None:
            verdict, threshold = bool(drift.any()), self.alpha
        else:
            verdict, threshold = share >= self.drift_share, self.drift_share
        min_p = float(adjusted.min()) if adjusted.size else 1.0
        logger.debug("feature drift: %d/%d features, verdict %s", drift.sum(), drift.size, verdict)
        return DriftResult(
            detector=self.name,
            drift=verdict,
            statistic=share,
            threshold=threshold,
            p_value=min_p,
            n_reference=ref.n_rows,
            n_current=summary.n_rows,
            features=tuple(features),
            details={
                "alpha": self.alpha,
                "correction": self.correction,
                "rule": "any feature"
                if self.drift_share is None
                else f"share >= {self.drift_share}",
                "n_drifted": int(drift.sum()),
                "n_features": int(drift.size),
                "drifted_features": [f.feature for f in features if f.drift],
            },
        )
