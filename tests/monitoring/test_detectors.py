"""Every detector flags corrupted digits and stays quiet on clean held-out digits."""

from __future__ import annotations

import json

import numpy as np
import pytest

from scanflow.monitoring import (
    CORRUPTIONS,
    FeatureDriftDetector,
    MMDDetector,
    MonitoringError,
    OutlierDetector,
    PredictionDriftDetector,
    PSIDetector,
    ReferenceProfile,
    corrupt,
)

from .conftest import window_of

DETECTORS = [
    FeatureDriftDetector(),
    PSIDetector(),
    MMDDetector(permutations=100),
    OutlierDetector(),
]
WINDOW = 200


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
@pytest.mark.parametrize("detector", DETECTORS, ids=lambda d: d.name)
def test_corruptions_are_flagged(detector, kind: str, profile, digits) -> None:
    rows = corrupt(window_of(digits.held_out, WINDOW, seed=1), kind, severity=2, seed=1)
    result = detector.check(profile, rows)
    assert result.drift, result.to_dict()
    assert result.n_current == WINDOW


@pytest.mark.parametrize("detector", DETECTORS, ids=lambda d: d.name)
def test_clean_held_out_digits_are_not_flagged(detector, profile, digits) -> None:
    seeds = range(20)
    alarms = sum(
        detector.check(profile, window_of(digits.held_out, WINDOW, s)).drift for s in seeds
    )
    assert alarms <= 2  # each detector works at a 5% level or stricter


def test_per_feature_evidence(profile, digits) -> None:
    clean = FeatureDriftDetector().check(profile, digits.held_out)
    bright = FeatureDriftDetector().check(profile, corrupt(digits.held_out, "brightness", 1))
    assert not clean.drift and clean.drifted_features == []
    assert bright.drift and bright.statistic > 0.9
    f = bright.feature("f0")  # a border pixel, always 0 in the reference: tested as a category
    assert (f.kind, f.test, f.drift) == ("categorical", "chi2", True)
    g = bright.feature("f20")
    assert (g.kind, g.test) == ("continuous", "ks")
    assert g.adjusted_p_value >= g.p_value and g.threshold == 0.05
    assert g.n_reference == 900 and g.n_current == len(digits.held_out)


def test_corrections_and_share_rule(profile, digits) -> None:
    mild = corrupt(window_of(digits.held_out, 150, 3), "rotation", severity=1, seed=3)
    results = {
        c: FeatureDriftDetector(correction=c).check(profile, mild)
        for c in ("none", "bh", "bonferroni")
    }
    drifted = {c: len(r.drifted_features) for c, r in results.items()}
    assert drifted["none"] >= drifted["bh"] >= drifted["bonferroni"] >= 1
    share = FeatureDriftDetector(correction="none", drift_share=0.99).check(profile, mild)
    assert not share.drift and share.threshold == 0.99
    assert share.details["rule"] == "share >= 0.99"


def test_prediction_drift(profile, digits, model) -> None:
    detector = PredictionDriftDetector()
    clean = digits.held_out
    assert not detector.check(profile, (clean, model.predict(clean))).drift
    noisy = corrupt(clean, "brightness", 4)
    result = detector.check(profile, (noisy, model.predict(noisy)))
    assert result.drift and result.features[0].test == "chi2"
    shares = result.details["current_share"]
    assert set(shares) == {*map(str, range(10)), "<unseen>"} and sum(
        shares.values()
    ) == pytest.approx(1, abs=1e-3)
    scores = ReferenceProfile.fit(
        digits.reference, predictions=model.predict_proba(digits.reference)
    )
    probs = detector.check(scores, (noisy, model.predict_proba(noisy)))
    assert probs.drift and {f.test for f in probs.features} == {"ks"} and len(probs.features) == 10


def test_outlier_scores_rank_corrupted_rows_higher(profile, digits) -> None:
    detector = OutlierDetector()
    clean = detector.score(profile, digits.held_out[:100])
    noisy = detector.score(profile, corrupt(digits.held_out[:100], "noise", 4, seed=0))
    limit, base = detector.threshold(profile)
    assert np.median(noisy) > limit > np.median(clean)
    assert 0.005 <= base <= 0.02


def test_mmd_sees_a_joint_change_that_marginals_miss(digits) -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(600, 2))
    ref = np.column_stack([a[:, 0], a[:, 0] + 0.3 * a[:, 1]])  # strongly correlated
    b = rng.normal(size=(400, 2))
    cur = np.column_stack([b[:, 0], rng.permutation(b[:, 0]) + 0.3 * b[:, 1]])  # same marginals
    profile = ReferenceProfile.fit(ref)
    assert not FeatureDriftDetector().check(profile, cur).drift
    assert MMDDetector().check(profile, cur).drift


def test_results_are_json_evidence(profile, digits, model) -> None:
    rows = corrupt(digits.held_out[:300], "noise", 3, seed=0)
    for detector in [*DETECTORS, PredictionDriftDetector()]:
        data = detector.check(profile, (rows, model.predict(rows))).to_dict()
        text = json.dumps(data, allow_nan=False)
        assert json.loads(text)["detector"] == detector.name
        assert {"drift", "statistic", "threshold", "p_value", "features", "details"} <= set(data)


def test_detector_errors(digits, profile) -> None:
    with pytest.raises(MonitoringError, match="alpha must be between 0 and 1"):
        FeatureDriftDetector(alpha=1.5)
    with pytest.raises(MonitoringError, match="unknown multiple-testing correction 'fdr'"):
        FeatureDriftDetector(correction="fdr")
    with pytest.raises(MonitoringError, match="drift_share must be in"):
        FeatureDriftDetector(drift_share=0)
    with pytest.raises(MonitoringError, match="PSI needs at least 2 bins"):
        PSIDetector(bins=1)
    with pytest.raises(MonitoringError, match="at least 10 permutations"):
        MMDDetector(permutations=3)
    with pytest.raises(MonitoringError, match="outlier quantile"):
        OutlierDetector(quantile=1.0)
    with pytest.raises(MonitoringError, match="has no predictions; fit it with"):
        PredictionDriftDetector().check(ReferenceProfile.fit(digits.reference), digits.held_out)
    with pytest.raises(MonitoringError, match="current data has no predictions"):
        PredictionDriftDetector().check(profile, digits.held_out)
    with pytest.raises(MonitoringError, match="3 prediction\\(s\\) for 10 row\\(s\\)"):
        FeatureDriftDetector().check(profile, (digits.held_out[:10], [1, 2, 3]))
    with pytest.raises(MonitoringError, match="holds no rows"):
        FeatureDriftDetector().check(profile, digits.held_out[:0])


def test_matrix_work_runs_on_one_blas_thread() -> None:
    from threadpoolctl import threadpool_info, threadpool_limits

    from scanflow.monitoring.kernels import one_blas_thread

    with threadpool_limits(limits=2, user_api="blas"):
        with one_blas_thread():
            inside = {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}
        after = {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}
    assert inside == {1}
    assert after == {2} or after == {1}  # restored (a 1-thread BLAS build stays at 1)
