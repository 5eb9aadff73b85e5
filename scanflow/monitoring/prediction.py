"""Drift of the model's outputs: class labels (chi-squared) or scores (Kolmogorov-Smirnov)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from scanflow.monitoring.base import as_summary, check_alpha
from scanflow.monitoring.errors import MonitoringError
from scanflow.monitoring.profile import ReferenceProfile
from scanflow.monitoring.result import DriftResult
from scanflow.monitoring.univariate import FeatureDriftDetector


@dataclass(frozen=True)
class PredictionDriftDetector:
    """Compares the distribution of predictions in the window with the reference's.

    Labels are tested with chi-squared, scores and probability columns with KS
    (Bonferroni across probability columns). Needs a profile fitted with ``predictions``.
    """

    alpha: float = 0.05
    correction: str = "bonferroni"
    name: str = "prediction"

    def __post_init__(self) -> None:
        check_alpha(self.alpha)

    def check(self, profile: ReferenceProfile, current: Any) -> DriftResult:
        """Prediction drift of ``current``: a window, a summary or ``(rows, predictions)``."""
        if profile.predictions is None:
            raise MonitoringError(
                "the reference profile has no predictions; fit it with "
                "ReferenceProfile.fit(rows, predictions=model_outputs)"
            )
        summary = as_summary(profile, current)
        if summary.predictions is None or summary.predictions.n_rows == 0:
            raise MonitoringError(
                "the current data has no predictions; pass predictions=... with the rows"
            )
        inner = FeatureDriftDetector(alpha=self.alpha, correction=self.correction, name=self.name)
        result = inner.compare(profile.predictions, summary.predictions)
        details = dict(result.details)
        pred = profile.predictions
        if pred.categorical_bins.n_features == 1:
            labels = [_label(c) for c in pred.categorical_bins.categories[0]] + ["<unseen>"]
            k = len(labels)
            ref_counts = pred.reference.categorical[0, :k]
            cur_counts = summary.predictions.categorical[0, : k - 1].tolist()
            cur_counts.append(int(summary.predictions.categorical[0, -2]))
            details["reference_share"] = dict(zip(labels, _shares(ref_counts), strict=True))
            details["current_share"] = dict(zip(labels, _shares(np.array(cur_counts)), strict=True))
        return DriftResult(**{**result.__dict__, "details": details})


def _label(value: Any) -> str:
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _shares(counts: np.ndarray) -> list[float]:
    total = max(int(np.sum(counts)), 1)
    return [round(float(c) / total, 4) for c in counts]
