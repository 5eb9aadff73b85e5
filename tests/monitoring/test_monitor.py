"""A monitor fed batch by batch: quiet on clean traffic, alarmed soon after a corruption."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from scanflow.monitoring import (
    FeatureDriftDetector,
    Monitor,
    MonitoringError,
    PSIDetector,
    corrupt,
    detect_drift,
)

from .conftest import window_of


def _stream(monitor: Monitor, rows: np.ndarray, model, start: float, batch: int = 25) -> list[bool]:
    """Feed ``rows`` in batches with timestamps; the verdict after each batch."""
    verdicts = []
    for i in range(0, len(rows), batch):
        part = rows[i : i + batch]
        times = start + np.arange(i, i + len(part)) * 0.01
        monitor.update(part, predictions=model.predict(part), timestamps=times)
        verdicts.append(monitor.check().drift)
    return verdicts


def test_clean_stream_then_corruption(profile, digits, model) -> None:
    monitor = Monitor(profile, max_rows=200, panes=8)
    clean = _stream(monitor, digits.held_out[:400], model, start=0.0)
    assert not any(clean)
    drifted = corrupt(digits.held_out[400:800], "rotation", severity=2, seed=0)
    after = _stream(monitor, drifted, model, start=10.0)
    first = after.index(True)
    assert first <= 3  # within 100 corrupted rows of a 200-row window
    assert all(after[first + 2 :])
    report = monitor.check()
    assert {"features", "psi", "mmd"} <= set(report.detectors_in_drift)
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["watermark"] == pytest.approx(10.0 + 399 * 0.01)
    assert data["results"]["features"]["details"]["n_drifted"] > 10


def test_false_alarm_rate_on_clean_windows(profile, digits, model) -> None:
    alarms = 0
    for seed in range(15):
        rows = window_of(digits.held_out, 250, seed)
        monitor = Monitor(profile)
        monitor.update(rows, predictions=model.predict(rows))
        alarms += monitor.check().drift
    assert alarms <= 1


def test_custom_detectors_and_quorum(profile, digits, model) -> None:
    rows = corrupt(digits.held_out[:300], "noise", 1, seed=0)
    monitor = Monitor(
        profile, detectors=[FeatureDriftDetector(), PSIDetector(threshold=5.0)], quorum=2
    )
    monitor.update(rows, predictions=model.predict(rows))
    report = monitor.check()
    assert report["features"].drift and not report["psi"].drift and not report.drift
    with pytest.raises(MonitoringError, match="detector names must be unique"):
        Monitor(profile, detectors=[FeatureDriftDetector(), FeatureDriftDetector()])
    with pytest.raises(MonitoringError, match="quorum must be at least 1"):
        Monitor(profile, quorum=0)


def test_detect_drift_one_shot(digits) -> None:
    assert not detect_drift(digits.reference, digits.held_out).drift
    result = detect_drift(digits.reference, corrupt(digits.held_out, "noise", 1, seed=0))
    assert result.drift and result.details["n_drifted"] > 30


def test_import_is_light() -> None:
    code = (
        "import sys, scanflow.monitoring\n"
        "print(sorted(m for m in ('pandas', 'sklearn', 'scipy.stats', 'scipy.ndimage', 'mlflow')"
        " if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
