"""Multivariate drift: maximum mean discrepancy with a Gaussian kernel and a permutation test."""

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
class MMDDetector:
    """Tests whether the reference and current row samples come from one distribution.

    Both samples are standardised by the reference and cut to ``max_rows`` rows each. The
    kernel width is the median distance within the reference sample. The p-value is the
    share of ``permutations`` label shuffles whose MMD^2 reaches the observed one; drift
    when it is below ``alpha``. Sees joint changes that per-feature tests miss.
    """

    alpha: float = 0.05
    permutations: int = 200
    max_rows: int = 500
    seed: int = 0
    name: str = "mmd"

    def __post_init__(self) -> None:
        check_alpha(self.alpha)
        if self.permutations < 10:
            raise MonitoringError(f"MMD needs at least 10 permutations, got {self.permutations}")
        if self.max_rows < 2:
            raise MonitoringError(f"MMD max_rows must be at least 2, got {self.max_rows}")

    def check(self, profile: ReferenceProfile, current: Any) -> DriftResult:
        """MMD^2 between the reference sample and ``current``'s sample, with its p-value."""
        summary = as_summary(profile, current, sample_size=self.max_rows)
        rng = np.random.default_rng(self.seed)
        ref = _cut(profile.reference.sample, self.max_rows, rng)
        cur = _cut(summary.sample, self.max_rows, rng)
        if ref.shape[1] == 0 or len(cur) < 2:
            raise MonitoringError(
                "MMD needs numeric features and at least 2 current rows in the window sample"
            )
        with one_blas_thread():
            return self._test(profile, ref, cur, rng, summary.n_rows)

    def _test(
        self,
        profile: ReferenceProfile,
        ref: np.ndarray,
        cur: np.ndarray,
        rng: np.random.Generator,
        n_current: int,
    ) -> DriftResult:
        x = standardise(profile, np.vstack([ref, cur]))
        width2 = profile.cached(
            f"mmd_width:{self.max_rows}:{self.seed}", lambda: _median_sq(x[: len(ref)])
        )
        kernel = np.exp(-sq_distances(x, x) / (2.0 * width2))
        n, m = len(ref), len(cur)
        weights = np.concatenate([np.full(n, 1.0 / n), np.full(m, -1.0 / m)])
        shuffled = rng.permuted(np.tile(weights, (self.permutations, 1)), axis=1)
        both = np.vstack([weights, shuffled])
        values = ((both @ kernel) * both).sum(axis=1)
        observed, null = float(values[0]), values[1:]
        p = float((1 + np.sum(null >= observed)) / (1 + self.permutations))
        return DriftResult(
            detector=self.name,
            drift=p < self.alpha,
            statistic=observed,
            threshold=self.alpha,
            p_value=p,
            n_reference=profile.reference.n_rows,
            n_current=n_current,
            details={
                "mmd2": observed,
                "null_mmd2_q95": float(np.quantile(null, 0.95)),
                "kernel_width": float(np.sqrt(width2)),
                "rows_compared": [n, m],
                "permutations": self.permutations,
            },
        )


def _cut(rows: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    if len(rows) <= k:
        return rows
    return rows[rng.choice(len(rows), size=k, replace=False)]


def _median_sq(x: np.ndarray) -> float:
    d = sq_distances(x, x)
    upper = d[np.triu_indices(len(x), k=1)]
    med = float(np.median(upper)) if upper.size else 1.0
    return med if med > 0 else 1.0
