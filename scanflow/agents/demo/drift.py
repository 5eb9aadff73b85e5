"""The drift the demo injects: MNIST-C-style corruptions of 8x8 digits (rotation, noise,
brightness), applied to each request's rows."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from scanflow.monitoring import corruptions

Corruption = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def corruption(severity: int = 3) -> Corruption:
    """Rows (n x 64, values in [0, 1]) rotated, with Gaussian noise, brighter; clipped.

    Applies :mod:`scanflow.monitoring.corruptions` (``severity`` of each, 1-5) in turn.
    """

    def corrupt(rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        pixels = rows * 16.0
        for kind in ("rotation", "noise", "brightness"):
            pixels = corruptions.CORRUPTIONS[kind](pixels, severity, rng)
        return pixels / 16.0

    return corrupt
