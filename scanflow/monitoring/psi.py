"""Population stability index per feature, over reference-quantile bins."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from scanflow.monitoring.base import as_summary
from scanflow.monitoring.errors import MonitoringError
from scanflow.monitoring.profile import CATEGORICAL, CONTINUOUS, ReferenceProfile
from scanflow.monitoring.result import DriftResult, FeatureDrift
from scanflow.monitoring.stats import psi_from_counts


@dataclass(frozen=True)
class PSIDetector:
    """PSI of each feature; a feature drifts when its PSI reaches ``threshold``.

    Continuous features use ``bins`` reference-quantile bins, categorical ones their
    categories (plus unseen ones). The data set drifts when at least ``drift_share`` of
    the features do. Common reading: below 0.1 stable, 0.1-0.25 moderate, above 0.25 major.
    PSI is unstable on few rows (empty bins weigh heavily), so windows of fewer than
    ``min_rows`` rows get no verdict (``drift`` False, ``details["too_few_rows"]``).
    """

    threshold: float = 0.2
    bins: int = 10
    drift_share: float = 0.1
    min_rows: int = 100
    name: str = "psi"

    def __post_init__(self) -> None:
        if not self.threshold > 0:
            raise MonitoringError(f"PSI threshold must be positive, got {self.threshold}")
        if self.bins < 2:
            raise MonitoringError(f"PSI needs at least 2 bins, got {self.bins}")
        if not 0.0 < self.drift_share <= 1.0:
            raise MonitoringError(f"drift_share must be in (0, 1], got {self.drift_share}")

    def check(self, profile: ReferenceProfile, current: Any) -> DriftResult:
        """PSI of ``current`` (window, summary or rows) against the reference profile."""
        summary = as_summary(profile, current)
        ref = profile.reference
        mapping = profile.cached(
            f"psi_bins:{self.bins}",
            lambda: profile.continuous_bins.psi_bins(ref.continuous, self.bins),
        )
        ref_binned = _rebin(ref.continuous, mapping, self.bins)
        cur_binned = _rebin(summary.continuous, mapping, self.bins)
        values = np.concatenate(
            [
                psi_from_counts(ref_binned, cur_binned),
                psi_from_counts(ref.categorical[:, :-1], summary.categorical[:, :-1]),
            ]
        )
        names = [*profile.continuous_names, *profile.categorical_names]
        kinds = [CONTINUOUS] * ref_binned.shape[0] + [CATEGORICAL] * ref.categorical.shape[0]
        drift = values >= self.threshold
        order = {name: i for i, name in enumerate(profile.names)}
        features = sorted(
            (
                FeatureDrift(
                    feature=names[i],
                    kind=kinds[i],
                    test="psi",
                    statistic=float(values[i]),
                    threshold=self.threshold,
                    drift=bool(drift[i]),
                    n_reference=ref.n_rows,
                    n_current=summary.n_rows,
                )
                for i in range(len(names))
            ),
            key=lambda f: order[f.feature],
        )
        share = float(drift.mean()) if drift.size else 0.0
        too_few = summary.n_rows < self.min_rows
        return DriftResult(
            detector=self.name,
            drift=share >= self.drift_share and not too_few,
            statistic=share,
            threshold=self.drift_share,
            n_reference=ref.n_rows,
            n_current=summary.n_rows,
            features=tuple(features),
            details={
                "psi_threshold": self.threshold,
                "bins": self.bins,
                "max_psi": float(values.max()) if values.size else 0.0,
                "mean_psi": float(values.mean()) if values.size else 0.0,
                "n_drifted": int(drift.sum()),
                "drifted_features": [f.feature for f in features if f.drift],
                "too_few_rows": too_few,
                "min_rows": self.min_rows,
            },
        )


def _rebin(cells: np.ndarray, mapping: np.ndarray, bins: int) -> np.ndarray:
    """Add cell counts into bins (the missing-value bin is dropped)."""
    n_features = cells.shape[0]
    flat = mapping + (np.arange(n_features) * (bins + 1))[:, None]
    out = np.bincount(flat.ravel(), weights=cells.ravel(), minlength=n_features * (bins + 1))
    return out.reshape(n_features, bins + 1)[:, :bins]
