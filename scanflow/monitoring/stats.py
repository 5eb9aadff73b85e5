"""Vectorised two-sample statistics over cell counts, and p-value corrections.

Every function takes counts of shape (features, cells) for the reference and the current
data and returns one value per feature. scipy is imported on first use (it takes about half
a second to load).
"""

from __future__ import annotations

import numpy as np

from scanflow.monitoring.errors import MonitoringError
from scanflow.monitoring.kolmogorov import ks_sf

CORRECTIONS = ("bonferroni", "bh", "none")


def ks_from_cells(reference: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided two-sample Kolmogorov-Smirnov statistic and p-value per feature.

    The cells are ordered along the line (see ``binning``). The p-value is scipy's
    asymptotic one (``kstwo`` with ``n*m/(n+m)``), the same that ``ks_2samp`` uses for
    large samples. Features with an empty side get statistic 0 and p-value 1.
    """
    n = reference.sum(axis=1).astype(np.float64)
    m = current.sum(axis=1).astype(np.float64)
    cdf_ref = np.cumsum(reference, axis=1) / np.maximum(n, 1.0)[:, None]
    cdf_cur = np.cumsum(current, axis=1) / np.maximum(m, 1.0)[:, None]
    stat = np.abs(cdf_ref - cdf_cur).max(axis=1, initial=0.0)
    empty = (n == 0) | (m == 0)
    stat[empty] = 0.0
    big, small = np.maximum(n, m), np.minimum(n, m)
    en = np.round(np.where(empty, 1.0, big * small / np.maximum(big + small, 1.0)))
    p = ks_sf(stat, en)
    p[empty] = 1.0
    return stat, p


def chi2_from_counts(
    reference: np.ndarray, current: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Chi-squared test of homogeneity (2 x categories table) per feature.

    Categories empty on both sides are left out. No continuity correction, so with two
    categories it equals the two-proportion z-test. Returns statistic, degrees of freedom
    and p-value; a feature with fewer than two categories in use has p-value 1.
    """
    from scipy import special

    reference = reference.astype(np.float64)
    current = current.astype(np.float64)
    n = reference.sum(axis=1, keepdims=True)
    m = current.sum(axis=1, keepdims=True)
    total = reference + current
    grand = np.maximum(n + m, 1.0)
    exp_ref = total * n / grand
    exp_cur = total * m / grand
    used = total > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(used, (reference - exp_ref) ** 2 / exp_ref, 0.0)
        terms += np.where(used, (current - exp_cur) ** 2 / exp_cur, 0.0)
    stat = np.nan_to_num(terms.sum(axis=1))
    dof = used.sum(axis=1) - 1
    empty = (n[:, 0] == 0) | (m[:, 0] == 0) | (dof < 1)
    p = np.where(empty, 1.0, special.chdtrc(np.maximum(dof, 1), stat))
    stat[empty] = 0.0
    return stat, np.maximum(dof, 0), p


def psi_from_counts(reference: np.ndarray, current: np.ndarray, eps: float = 1e-4) -> np.ndarray:
    """Population stability index per feature: sum of (q - p) * ln(q / p) over bins.

    Proportions are floored at ``eps`` so that an empty bin on one side stays finite;
    bins empty on both sides add nothing.
    """
    n = np.maximum(reference.sum(axis=1, keepdims=True), 1)
    m = np.maximum(current.sum(axis=1, keepdims=True), 1)
    p = np.maximum(reference / n, eps)
    q = np.maximum(current / m, eps)
    return ((q - p) * np.log(q / p)).sum(axis=1)


def adjust_pvalues(p: np.ndarray, method: str) -> np.ndarray:
    """Correct p-values for testing many features at once.

    ``bonferroni`` controls the family-wise error rate, ``bh`` (Benjamini-Hochberg) the false
    discovery rate, ``none`` leaves them as they are. NaN p-values are left out and kept.
    """
    p = np.asarray(p, dtype=np.float64)
    if method not in CORRECTIONS:
        raise MonitoringError(
            f"unknown multiple-testing correction {method!r}; use one of {', '.join(CORRECTIONS)}"
        )
    out = p.copy()
    ok = np.isfinite(p)
    k = int(ok.sum())
    if method == "none" or k == 0:
        return out
    values = p[ok]
    if method == "bonferroni":
        out[ok] = np.minimum(values * k, 1.0)
        return out
    order = np.argsort(values)
    ranked = values[order] * k / np.arange(1, k + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    adjusted = np.empty(k)
    adjusted[order] = np.minimum(ranked, 1.0)
    out[ok] = adjusted
    return out
