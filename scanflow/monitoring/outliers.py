"""Outlier score: distance to the nearest reference rows, and a test on the outlier rate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from scanflow.monitoring.base import as_summary, check_alpha
from scanflow.monitoring.errors import MonitoringError
from scanflow.monitoring.kernels import one_blas_thread, sq_distances, standardise
from scanflow.monitoring.profile import ReferenceProfile
from scanflow.monitoring.result import DriftResult


@dataclass(frozen=True)
class OutlierDetector:
    """Scores rows by their mean distance to the ``k`` nearest reference rows.

    A row is an outlier when its score exceeds the ``quantile`` of the reference rows'
    own scores (each left out of its neighbours), so about ``1 - quantile`` of normal rows
    are outliers. The window drifts when its outlier rate is higher than the reference's
    by a one-sided binomial test at ``alpha``.
    """

    k: int = 5
    quantile: float = 0.99
    alpha: float = 0.01
    chunk: int = 2048
    name: str = "outliers"

    def __post_init__(self) -> None:
        check_alpha(self.alpha)
        if self.k < 1:
            raise MonitoringError(f"outlier k must be at least 1, got {self.k}")
        if not 0.5 <= self.quantile < 1.0:
            raise MonitoringError(f"outlier quantile must be in [0.5, 1), got {self.quantile}")

    def score(self, profile: ReferenceProfile, rows: Any) -> np.ndarray:
        """Outlier score of each row of ``rows`` (array or DataFrame shaped like the reference)."""
        return self._scores(profile, profile.sample_rows(rows))

    def threshold(self, profile: ReferenceProfile) -> tuple[float, float]:
        """Score above which a row is an outlier, and the reference's own outlier rate."""
        return profile.cached(
            f"outlier_threshold:{self.k}:{self.quantile}", lambda: self._calibrate(profile)
        )

    def check(self, profile: ReferenceProfile, current: Any) -> DriftResult:
        """Outlier rate of ``current``'s row sample against the reference's."""
        summary = as_summary(profile, current)
        limit, base_rate = self.threshold(profile)
        scores = self._scores(profile, summary.sample)
        count, n = int((scores > limit).sum()), len(scores)
        rate = count / n if n else 0.0
        p = _binomial_tail(count, n, base_rate)
        return DriftResult(
            detector=self.name,
            drift=p < self.alpha and rate > base_rate,
            statistic=rate,
            threshold=self.alpha,
            p_value=p,
            n_reference=profile.reference.n_rows,
            n_current=summary.n_rows,
            details={
                "outlier_rate": rate,
                "expected_rate": base_rate,
                "score_threshold": limit,
                "outliers_in_sample": count,
                "rows_scored": n,
                "median_score": float(np.median(scores)) if n else 0.0,
            },
        )

    def _reference(self, profile: ReferenceProfile) -> np.ndarray:
        ref = profile.reference.sample
        if len(ref) <= self.k:
            raise MonitoringError(
                f"the outlier score needs more than k={self.k} reference rows in the profile's "
                f"sample, it has {len(ref)}; fit the profile on more rows or lower k"
            )
        return profile.cached("outlier_reference", lambda: standardise(profile, ref))

    def _scores(
        self, profile: ReferenceProfile, rows: np.ndarray, leave_out: bool = False
    ) -> np.ndarray:
        ref = self._reference(profile)
        x = standardise(profile, rows)
        out = np.empty(len(x))
        for start in range(0, len(x), self.chunk):
            with one_blas_thread():
                d = sq_distances(x[start : start + self.chunk], ref)
            if leave_out:
                idx = np.arange(start, min(start + self.chunk, len(x)))
                d[idx - start, idx] = np.inf
            nearest = np.partition(d, self.k - 1, axis=1)[:, : self.k]
            out[start : start + self.chunk] = np.sqrt(nearest).mean(axis=1)
        return out

    def _calibrate(self, profile: ReferenceProfile) -> tuple[float, float]:
        own = self._scores(profile, profile.reference.sample, leave_out=True)
        limit = float(np.quantile(own, self.quantile))
        return limit, max(float((own > limit).mean()), 1.0 / len(own))


def _binomial_tail(count: int, n: int, rate: float) -> float:
    """P(X >= count) for X ~ Binomial(n, rate)."""
    from scipy import special

    return float(special.bdtrc(count - 1, n, rate)) if count > 0 else 1.0
