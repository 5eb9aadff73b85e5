"""The drift test DriftRetrain uses by default: per-feature two-sample Kolmogorov-Smirnov
with a Bonferroni correction (constant features are left out).

Any callable ``(reference, current) -> {"drift": bool, "score": float, ...}`` can replace
it through the strategy's ``detector`` option (e.g. a detector of
:mod:`scanflow.monitoring`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Detector = Callable[[np.ndarray, np.ndarray], dict[str, Any]]


def ks_detector(reference: np.ndarray, current: np.ndarray, alpha: float = 0.05) -> dict[str, Any]:
    """Drift when any feature's KS p-value is below ``alpha / features``; the score is the
    share of features that drifted."""
    from scipy.stats import ks_2samp

    varying = np.flatnonzero((reference.std(axis=0) > 0) | (current.std(axis=0) > 0))
    if varying.size == 0:
        return {"drift": False, "score": 0.0, "p_min": 1.0, "features": 0}
    result = ks_2samp(reference[:, varying], current[:, varying], axis=0)
    pvalues = np.atleast_1d(result.pvalue)
    threshold = alpha / varying.size
    drifted = int((pvalues < threshold).sum())
    return {
        "drift": drifted > 0,
        "score": drifted / varying.size,
        "p_min": float(pvalues.min()),
        "features": int(varying.size),
        "drifted_features": drifted,
        "threshold": threshold,
    }
