"""The vectorised statistics equal scipy's, feature by feature."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from scanflow.monitoring import MonitoringError, adjust_pvalues
from scanflow.monitoring.binning import ContinuousBins
from scanflow.monitoring.kolmogorov import ks_sf
from scanflow.monitoring.stats import chi2_from_counts, ks_from_cells, psi_from_counts


def _ks(ref: np.ndarray, cur: np.ndarray, max_edges: int = 4096):
    bins = ContinuousBins.fit(ref, [f"f{j}" for j in range(ref.shape[1])], max_edges)
    return ks_from_cells(bins.count(ref)[:, :-1], bins.count(cur)[:, :-1])


@pytest.mark.parametrize("kind", ["continuous", "discrete"])
def test_ks_statistic_and_p_value_equal_scipy(kind: str) -> None:
    rng = np.random.default_rng(1)
    if kind == "continuous":
        ref = rng.normal(size=(700, 12))
        cur = rng.normal(loc=np.linspace(0, 0.4, 12), size=(450, 12))
    else:  # ties everywhere, as with pixel values 0..16
        ref = rng.integers(0, 17, size=(700, 12)).astype(float)
        cur = np.minimum(rng.integers(0, 17, size=(450, 12)) + rng.integers(0, 2, (450, 12)), 16)
    stat, p = _ks(ref, cur.astype(float))
    for j in range(12):
        expected = stats.ks_2samp(ref[:, j], cur[:, j], method="asymp")
        assert stat[j] == pytest.approx(expected.statistic, abs=1e-12)
        assert p[j] == pytest.approx(expected.pvalue, rel=1e-3, abs=1e-5)


def test_ks_with_quantile_edges_is_low_by_at_most_one_cell() -> None:
    rng = np.random.default_rng(2)
    ref, cur = rng.normal(size=(5000, 3)), rng.normal(0.1, 1.2, size=(3000, 3))
    stat, _ = _ks(ref, cur, max_edges=100)
    for j in range(3):
        exact = stats.ks_2samp(ref[:, j], cur[:, j]).statistic
        assert exact - 1 / 50 <= stat[j] <= exact + 1e-12


def test_ks_p_values_match_kstwo() -> None:
    rng = np.random.default_rng(3)
    for n in (50, 141, 450, 990, 5000, 99010):
        d = np.concatenate([rng.uniform(0, 0.25, 40), [0.0, 1.0, 0.5 / n, 1 / n, 1 - 1 / n]])
        ours, scipy_sf = ks_sf(d, np.full(d.size, n)), stats.kstwo.sf(d, n)
        assert np.max(np.abs(ours - scipy_sf)) < 1e-5
        decisive = scipy_sf > 1e-4
        assert np.max(np.abs(ours - scipy_sf)[decisive] / scipy_sf[decisive]) < 1e-3


def test_chi2_equals_scipy_contingency_without_correction() -> None:
    ref = np.array([[300, 500, 200, 0], [100, 100, 0, 0], [50, 0, 0, 0]])
    cur = np.array([[200, 300, 400, 50], [120, 80, 0, 0], [70, 0, 0, 0]])
    stat, dof, p, fisher = chi2_from_counts(ref, cur)
    for j in range(2):
        table = np.array([ref[j], cur[j]])
        table = table[:, table.sum(0) > 0]
        expected = stats.chi2_contingency(table, correction=False)
        assert stat[j] == pytest.approx(expected.statistic)
        assert p[j] == pytest.approx(expected.pvalue)
        assert dof[j] == expected.dof
    assert p[2] == 1.0  # one category in use: nothing to test
    assert not fisher.any()


def test_rare_categories_do_not_fake_drift() -> None:
    # a pixel always 0 in 900 reference rows, once 3 in 25 current rows
    ref, cur = np.array([[900, 0, 0]]), np.array([[24, 1, 0]])
    _, _, p, fisher = chi2_from_counts(ref, cur)
    assert fisher[0] and p[0] == pytest.approx(stats.fisher_exact([[900, 0], [24, 1]]).pvalue)
    assert p[0] > 0.02  # the plain chi-squared approximation would say 1e-8
    # rare categories are pooled, the common ones still tested by chi-squared
    ref, cur = np.array([[400, 400, 2, 1, 0]]), np.array([[100, 150, 0, 1, 1]])
    stat, dof, p, fisher = chi2_from_counts(ref, cur)
    merged = stats.chi2_contingency([[403, 400], [102, 150]], correction=False)
    assert not fisher[0] and dof[0] == 1  # the pooled cell was too small: it joined another
    assert p[0] == pytest.approx(merged.pvalue) and stat[0] == pytest.approx(merged.statistic)


def test_psi_of_a_known_shift() -> None:
    ref = np.array([[50, 50], [50, 50]])
    cur = np.array([[50, 50], [80, 20]])
    psi = psi_from_counts(ref, cur)
    assert psi[0] == 0.0
    assert psi[1] == pytest.approx(
        (0.8 - 0.5) * np.log(0.8 / 0.5) + (0.2 - 0.5) * np.log(0.2 / 0.5)
    )


def test_corrections() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.5, np.nan])
    assert np.allclose(adjust_pvalues(p, "bonferroni")[:4], [0.04, 0.16, 0.12, 1.0])
    assert np.allclose(adjust_pvalues(p, "bh")[:4], stats.false_discovery_control(p[:4]))
    assert np.isnan(adjust_pvalues(p, "bh")[4])
    assert np.array_equal(adjust_pvalues(p, "none")[:4], p[:4])
    with pytest.raises(MonitoringError, match="unknown multiple-testing correction 'holm'"):
        adjust_pvalues(p, "holm")
