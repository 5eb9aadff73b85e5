"""MNIST-C-style corruptions keep the digits' shape and range and change what they should."""

from __future__ import annotations

import numpy as np
import pytest

from scanflow.monitoring import CORRUPTIONS, MonitoringError, corrupt
from scanflow.monitoring.corruptions import rotation


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_shape_range_and_seed(kind: str, digits) -> None:
    x = digits.held_out[:50]
    out = corrupt(x, kind, 3, seed=7)
    assert out.shape == x.shape
    assert out.min() >= 0.0 and out.max() <= 16.0
    assert np.array_equal(out, corrupt(x, kind, 3, seed=7))
    assert not np.allclose(out, x)


def test_severity_orders_the_damage(digits) -> None:
    x = digits.held_out[:200]
    change = [np.abs(corrupt(x, "noise", s, seed=0) - x).mean() for s in range(1, 6)]
    assert change == sorted(change)
    assert corrupt(x, "brightness", 5).mean() > corrupt(x, "brightness", 1).mean() > x.mean()


def test_rotation_moves_an_off_centre_pixel() -> None:
    image = np.zeros((1, 64))
    image[0, 0 * 8 + 4] = 16.0  # top row, right of centre
    out = rotation(image, severity=5, rng=np.random.default_rng(0)).reshape(8, 8)
    assert out[0, 4] < 16.0
    assert out.sum() > 0


def test_bad_input() -> None:
    with pytest.raises(MonitoringError, match="unknown corruption 'blur'"):
        corrupt(np.zeros((2, 64)), "blur")
    with pytest.raises(MonitoringError, match="severity must be 1, 2, 3, 4 or 5, got 0"):
        corrupt(np.zeros((2, 64)), "noise", 0)
    with pytest.raises(MonitoringError, match="rows of 64 pixels"):
        corrupt(np.zeros((2, 10)), "noise")
