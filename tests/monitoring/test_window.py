"""Windows summarise each row once, expire old rows, and keep a watermark."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scanflow.monitoring import FeatureDriftDetector, MonitoringError, ReferenceProfile, Window


def _counting(monkeypatch: pytest.MonkeyPatch, profile: ReferenceProfile) -> list[int]:
    """Record how many rows each call to ``summarise`` reads."""
    seen: list[int] = []
    original = ReferenceProfile.summarise

    def summarise(self, data, **kwargs):
        if self is profile:
            seen.append(len(data))
        return original(self, data, **kwargs)

    monkeypatch.setattr(ReferenceProfile, "summarise", summarise)
    return seen


def test_incremental_summary_equals_one_pass(profile, digits, model) -> None:
    rows, preds = digits.held_out, model.predict(digits.held_out)
    window = Window(profile)
    for start in range(0, len(rows), 97):
        window.update(rows[start : start + 97], predictions=preds[start : start + 97])
    whole = profile.summarise(rows, predictions=preds)
    got = window.summary()
    assert got.n_rows == len(rows) == window.rows_seen
    assert np.array_equal(got.continuous, whole.continuous)
    assert np.array_equal(got.categorical, whole.categorical)
    assert np.array_equal(got.predictions.categorical, whole.predictions.categorical)
    assert len(got.sample) == window.sample_size
    one = FeatureDriftDetector().check(profile, got)
    two = FeatureDriftDetector().check(profile, (rows, preds))
    assert [f.statistic for f in one.features] == [f.statistic for f in two.features]


def test_checks_never_reread_summarised_rows(profile, digits, model, monkeypatch) -> None:
    seen = _counting(monkeypatch, profile)
    window = Window(profile, max_rows=400)
    batches = (
        (digits.held_out[i : i + 50], model.predict(digits.held_out[i : i + 50]))
        for i in range(0, 800, 50)
    )
    for batch in batches:  # a generator: each batch can be read only once anyway
        window.update(batch[0], predictions=batch[1])
        FeatureDriftDetector().check(profile, window)
    assert sum(seen) == 800 == window.rows_seen
    assert 400 <= window.n_rows <= 440


def test_watermark_skips_redelivered_rows(profile, digits, model) -> None:
    rows, preds = digits.held_out[:300], model.predict(digits.held_out[:300])
    times = 1_700_000_000.0 + np.arange(300)
    window = Window(profile)
    assert window.update(rows[:200], predictions=preds[:200], timestamps=times[:200]) == 200
    # the log is read again from its start: only the 100 new rows count
    assert window.update(rows, predictions=preds, timestamps=times) == 100
    assert window.update(rows, predictions=preds, timestamps=times) == 0
    assert window.n_rows == 300 and window.rows_skipped == 500
    assert window.watermark == times[-1]
    assert window.summary().last_time == times[-1]


def test_time_window_expires_by_age(profile, digits, model) -> None:
    rows, preds = digits.held_out[:600], model.predict(digits.held_out[:600])
    window = Window(profile, max_age=60.0, panes=6)
    window.update(rows, predictions=preds, timestamps=np.arange(600) * 0.5)  # 300 s of traffic
    assert window.watermark == 299.5
    # panes of 10 s: rows older than 60 s before the watermark are gone, whole panes at a time
    assert 120 <= window.n_rows <= 140
    assert window.summary().first_time >= 299.5 - 70


def test_count_window_keeps_the_last_rows(profile, digits, model) -> None:
    window = Window(profile, max_rows=100, panes=4)
    rows, preds = digits.held_out, model.predict(digits.held_out)
    window.update(rows[:30], predictions=preds[:30])
    window.update(rows[30:800], predictions=preds[30:800])
    assert 100 <= window.n_rows < 125
    assert window.rows_seen == 800
    window.reset()
    assert window.n_rows == 0 and window.rows_seen == 800


def test_dataframe_batches_with_columns_and_iterables(profile, digits, model) -> None:
    frame = pd.DataFrame(digits.held_out[:120], columns=list(profile.names))
    frame["prediction"] = model.predict(digits.held_out[:120])
    frame["ts"] = np.arange(120.0)
    window = Window(profile, prediction_column="prediction", timestamp_column="ts")
    assert window.update(frame.iloc[:40]) == 40
    added = window.extend(
        [
            frame.iloc[40:80],
            (
                digits.held_out[80:100],
                model.predict(digits.held_out[80:100]),
                np.arange(80.0, 100.0),
            ),
            {
                "features": digits.held_out[100:120],
                "predictions": model.predict(digits.held_out[100:120]),
                "timestamps": np.arange(100.0, 120.0),
            },
        ]
    )
    assert added == 80 and window.n_rows == 120 and window.watermark == 119.0


def test_window_errors(profile, digits) -> None:
    with pytest.raises(MonitoringError, match="max_rows or max_age, not both"):
        Window(profile, max_rows=10, max_age=5.0)
    with pytest.raises(MonitoringError, match="max_rows must be at least 1"):
        Window(profile, max_rows=0)
    with pytest.raises(MonitoringError, match="needs timestamps"):
        Window(profile, max_age=5.0).update(digits.held_out[:5], predictions=np.zeros(5))
    with pytest.raises(MonitoringError, match="timestamps must be 5 finite numbers"):
        Window(profile).update(digits.held_out[:5], predictions=np.zeros(5), timestamps=[1, 2])
    with pytest.raises(MonitoringError, match="not a DataFrame"):
        Window(profile).update(digits.held_out[:5], predictions="prediction")
    with pytest.raises(MonitoringError, match="has no column 'pred'"):
        Window(profile).update(pd.DataFrame(digits.held_out[:5]), predictions="pred")
    with pytest.raises(MonitoringError, match="holds no rows"):
        FeatureDriftDetector().check(profile, Window(profile))
