"""Reference profiles: feature kinds, tables of mixed types, persistence, clear errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scanflow.monitoring import (
    FeatureDriftDetector,
    MonitoringError,
    PredictionDriftDetector,
    ReferenceProfile,
)


def _table(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "amount": rng.lognormal(3 + shift, 1, n),
            "age": rng.integers(18, 90, n),
            "channel": rng.choice(
                ["web", "app", "shop"], n, p=[0.5, 0.3 + shift / 5, 0.2 - shift / 5]
            ),
            "flag": rng.integers(0, 2, n),
        }
    )


def test_kinds_are_inferred_and_can_be_declared() -> None:
    profile = ReferenceProfile.fit(_table(500, 0))
    assert dict(zip(profile.names, profile.kinds, strict=True)) == {
        "amount": "continuous",
        "age": "continuous",
        "channel": "categorical",
        "flag": "categorical",
    }
    declared = ReferenceProfile.fit(_table(500, 0), categorical=["age"])
    assert declared.kinds[1] == "categorical"


def test_mixed_table_drift_and_unseen_categories() -> None:
    profile = ReferenceProfile.fit(_table(1000, 0))
    detector = FeatureDriftDetector()
    assert not detector.check(profile, _table(800, 1)).drift
    shifted = _table(800, 2, shift=0.5)
    result = detector.check(profile, shifted)
    assert {"amount", "channel"} <= set(result.drifted_features)
    assert result.feature("channel").test == "chi2"
    new = _table(800, 3)
    new.loc[:100, "channel"] = "phone"  # a category the reference never saw
    assert "channel" in detector.check(profile, new).drifted_features
    # extra columns are ignored, column order does not matter
    reordered = _table(300, 4)[["flag", "channel", "age", "amount"]].assign(extra=1.0)
    assert detector.check(profile, reordered).n_current == 300


def test_missing_values_are_counted_not_tested() -> None:
    ref = _table(600, 0)
    cur = _table(600, 1)
    cur.loc[:99, "amount"] = np.nan
    cur.loc[:49, "channel"] = None
    profile = ReferenceProfile.fit(ref)
    result = FeatureDriftDetector().check(profile, cur)
    assert result.feature("amount").n_current == 500
    assert result.feature("channel").n_current == 550


def test_save_and_load_give_the_same_verdicts(tmp_path, digits, model, profile) -> None:
    path = profile.save(tmp_path / "digits.npz")
    loaded = ReferenceProfile.load(path)
    assert loaded.names == profile.names and loaded.kinds == profile.kinds
    current = (digits.held_out, model.predict(digits.held_out))
    for detector in (FeatureDriftDetector(), PredictionDriftDetector()):
        assert (
            detector.check(loaded, current).to_dict() == detector.check(profile, current).to_dict()
        )
    table = ReferenceProfile.fit(_table(300, 0))
    again = ReferenceProfile.load(table.save(tmp_path / "table.npz"))
    assert (
        FeatureDriftDetector().check(again, _table(200, 5)).to_dict()
        == FeatureDriftDetector().check(table, _table(200, 5)).to_dict()
    )


def test_profile_errors(tmp_path, digits) -> None:
    with pytest.raises(MonitoringError, match="at least 2 rows"):
        ReferenceProfile.fit(digits.reference[:1])
    with pytest.raises(
        MonitoringError, match="has 10 column\\(s\\) but the reference profile has 64"
    ):
        FeatureDriftDetector().check(ReferenceProfile.fit(digits.reference), np.zeros((5, 10)))
    with pytest.raises(MonitoringError, match="lacks column\\(s\\) \\['channel'\\]"):
        FeatureDriftDetector().check(
            ReferenceProfile.fit(_table(100, 0)), _table(50, 1).drop(columns="channel")
        )
    bad = _table(50, 1).astype({"amount": object})
    bad.loc[3, "amount"] = "n/a"
    with pytest.raises(MonitoringError, match="feature 'amount' is continuous .* non-numeric"):
        FeatureDriftDetector().check(ReferenceProfile.fit(_table(100, 0)), bad)
    with pytest.raises(MonitoringError, match="declared continuous but holds non-numeric"):
        ReferenceProfile.fit(_table(100, 0), continuous=["channel"])
    with pytest.raises(MonitoringError, match="not reference columns"):
        ReferenceProfile.fit(_table(100, 0), categorical=["colour"])
    with pytest.raises(MonitoringError, match="no finite values"):
        ReferenceProfile.fit(
            np.column_stack([np.full(10, np.nan), np.arange(10.0)]), continuous=["f0"]
        )
    with pytest.raises(MonitoringError, match="3 reference prediction\\(s\\) for 900"):
        ReferenceProfile.fit(digits.reference, predictions=[1, 2, 3])
    with pytest.raises(MonitoringError, match="expected rows as a 1-D or 2-D array"):
        ReferenceProfile.fit(np.zeros((4, 4, 4)))
    (tmp_path / "junk.npz").write_text("not a profile")
    with pytest.raises(MonitoringError, match="cannot read a reference profile"):
        ReferenceProfile.load(tmp_path / "junk.npz")
