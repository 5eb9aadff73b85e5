"""The drift test DriftRetrain uses: :mod:`scanflow.monitoring`'s per-feature tests (KS or
chi-squared with a multiple-testing correction), or, without that package, per-feature
two-sample Kolmogorov-Smirnov with a Bonferroni correction.

Any callable ``(reference, current) -> {"drift": bool, "score": float, ...}`` can replace
it through the strategy's ``detector`` option.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Detector = Callable[[np.ndarray, np.ndarray], dict[str, Any]]
TOP_FEATURES = 8  # per-feature statistics kept as evidence: the most drifted ones


def top_features(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The :data:`TOP_FEATURES` features with the smallest p-values, for the evidence."""
    return sorted(rows, key=lambda r: (r["p"] is None, r["p"]))[:TOP_FEATURES]


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
        "per_feature": top_features(
            [
                {
                    "feature": str(i),
                    "test": "ks",
                    "statistic": float(st),
                    "p": float(p),
                    "threshold": threshold,
                    "drift": bool(p < threshold),
                }
                for i, st, p in zip(varying, np.atleast_1d(result.statistic), pvalues, strict=True)
            ]
        ),
    }


def monitoring_detector(reference: np.ndarray, current: np.ndarray) -> dict[str, Any]:
    """:func:`scanflow.monitoring.detect_drift` as a DriftRetrain detector; the score is the
    share of features that drifted."""
    from scanflow.monitoring import detect_drift

    result = detect_drift(reference, current)
    features = result.features
    pvalues = [f.adjusted_p_value for f in features if f.adjusted_p_value is not None]
    drifted = len(result.drifted_features)
    return {
        "drift": bool(result.drift),
        "score": drifted / len(features) if features else 0.0,
        "p_min": float(min(pvalues, default=1.0)),
        "features": len(features),
        "drifted_features": drifted,
        "detector": result.detector,
        "per_feature": top_features(
            [
                {
                    "feature": f.feature,
                    "test": f.test,
                    "statistic": float(f.statistic),
                    "p": f.adjusted_p_value,
                    "threshold": f.threshold,
                    "drift": bool(f.drift),
                }
                for f in features
            ]
        ),
    }


def default_detector() -> Detector:
    """The monitoring library's test when it is installed, else :func:`ks_detector`."""
    try:
        import scanflow.monitoring  # noqa: F401
    except ImportError:
        return ks_detector
    return monitoring_detector
