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
    reference: np.ndarray, current: np.ndarray, min_expected: float = 5.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Test of homogeneity (2 x categories table) per feature.

    The chi-squared approximation needs about ``min_expected`` rows expected in every cell,
    which rare categories and small windows break (a single new value in 25 rows would
    read as p = 1e-8). So categories expected fewer times on the smaller side are pooled
    into one cell; a pooled cell still too small joins the smallest other category; and a
    table left with two columns and a small cell gets Fisher's exact test instead. No
    continuity correction: with two large categories this is the two-proportion z-test.
    Returns statistic, degrees of freedom, p-value and whether Fisher's test was used;
    a feature with fewer than two categories in use has p-value 1.
    """
    from scipy import special

    ref, cur = _pool_rare(reference.astype(np.float64), current.astype(np.float64), min_expected)
    n = ref.sum(axis=1, keepdims=True)
    m = cur.sum(axis=1, keepdims=True)
    total = ref + cur
    grand = np.maximum(n + m, 1.0)
    exp_ref = total * n / grand
    exp_cur = total * m / grand
    used = total > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(used, (ref - exp_ref) ** 2 / exp_ref, 0.0)
        terms += np.where(used, (cur - exp_cur) ** 2 / exp_cur, 0.0)
    stat = np.nan_to_num(terms.sum(axis=1))
    dof = used.sum(axis=1) - 1
    empty = (n[:, 0] == 0) | (m[:, 0] == 0) | (dof < 1)
    p = np.where(empty, 1.0, special.chdtrc(np.maximum(dof, 1), stat))
    small = np.where(used, np.minimum(exp_ref, exp_cur), np.inf).min(axis=1) < min_expected
    fisher = ~empty & (dof == 1) & small
    for j in np.flatnonzero(fisher):
        cols = np.flatnonzero(used[j])
        table = np.array([ref[j, cols], cur[j, cols]]).round().astype(np.int64)
        p[j] = _fisher_exact(table)
    stat[empty] = 0.0
    return stat, np.maximum(dof, 0), p, fisher


def _pool_rare(
    ref: np.ndarray, cur: np.ndarray, min_expected: float
) -> tuple[np.ndarray, np.ndarray]:
    """Pool categories expected fewer than ``min_expected`` times into one extra cell."""
    n, m = ref.sum(axis=1, keepdims=True), cur.sum(axis=1, keepdims=True)
    smaller = np.minimum(n, m) / np.maximum(n + m, 1.0)
    total = ref + cur
    rare = (total > 0) & (total * smaller < min_expected)
    pooled_ref = np.where(rare, ref, 0.0).sum(axis=1)
    pooled_cur = np.where(rare, cur, 0.0).sum(axis=1)
    ref, cur = np.where(rare, 0.0, ref), np.where(rare, 0.0, cur)
    kept = (ref + cur) > 0
    still_small = ((pooled_ref + pooled_cur) * smaller[:, 0] < min_expected) & (
        kept.sum(axis=1) >= 2
    )
    smallest = np.argmin(np.where(kept, ref + cur, np.inf), axis=1)
    rows = np.flatnonzero(still_small)
    ref[rows, smallest[rows]] += pooled_ref[rows]
    cur[rows, smallest[rows]] += pooled_cur[rows]
    pooled_ref[rows] = pooled_cur[rows] = 0.0
    return np.column_stack([ref, pooled_ref]), np.column_stack([cur, pooled_cur])


def _fisher_exact(table: np.ndarray) -> float:
    from scipy.stats import fisher_exact

    return float(fisher_exact(table).pvalue)


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
