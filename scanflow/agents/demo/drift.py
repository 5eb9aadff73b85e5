"""The drift the demo injects: MNIST-C-style corruptions of 8x8 digits (rotation, noise,
brightness), applied to each request's rows."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Corruption = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _rotate(images: np.ndarray, degrees: float) -> np.ndarray:
    from scipy.ndimage import rotate

    return rotate(images, degrees, axes=(1, 2), reshape=False, order=1, mode="constant")


def corruption(rotation: float = 35.0, noise: float = 0.15, brightness: float = 0.25) -> Corruption:
    """Rows (n x 64, values in [0, 1]) rotated, with Gaussian noise, brighter; clipped.

    Uses :mod:`scanflow.monitoring.corruptions` (severity 3 of each) when installed.
    """
    try:
        from scanflow.monitoring import corruptions
    except ImportError:
        corruptions = None

    if corruptions is not None:

        def corrupt_monitoring(rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
            pixels = rows * 16.0
            for kind in ("rotation", "noise", "brightness"):
                pixels = corruptions.CORRUPTIONS[kind](pixels, 3, rng)
            return pixels / 16.0

        return corrupt_monitoring

    def corrupt(rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        images = rows.reshape(-1, 8, 8)
        images = _rotate(images, rotation)
        images = images + rng.normal(0.0, noise, images.shape) + brightness
        return np.clip(images, 0.0, 1.0).reshape(len(rows), -1)

    return corrupt
