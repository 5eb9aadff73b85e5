"""MNIST-C-style corruptions of 8x8 digit images (scikit-learn digits, pixels 0..16).

Each corruption takes rows of 64 pixels and a severity from 1 (mild) to 5 (strong), and
returns new rows in the same range. They simulate what a deployed digit reader meets:
sensor noise, rotated scans, over-exposed images.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from scanflow.monitoring.errors import MonitoringError

SIDE = 8
MAX_PIXEL = 16.0
_NOISE = (0.08, 0.12, 0.18, 0.26, 0.38)  # Gaussian sigma, as a share of the pixel range
_ANGLE = (10.0, 20.0, 30.0, 45.0, 60.0)  # largest rotation in degrees
_BRIGHTNESS = (0.1, 0.2, 0.3, 0.4, 0.5)  # added light, as a share of the pixel range


def gaussian_noise(
    images: np.ndarray, severity: int = 3, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Add Gaussian noise to every pixel."""
    x, rng = _images(images), rng or np.random.default_rng()
    sigma = _NOISE[_level(severity)] * MAX_PIXEL
    return np.clip(x + rng.normal(0.0, sigma, size=x.shape), 0.0, MAX_PIXEL).reshape(len(x), -1)


def rotation(
    images: np.ndarray, severity: int = 3, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Rotate each image about its centre by a random angle between half and all of the
    severity's largest angle, clockwise or not (bilinear, black outside)."""
    from scipy import ndimage  # imported here: scipy.ndimage takes most of a second to load

    x, rng = _images(images), rng or np.random.default_rng()
    top = _ANGLE[_level(severity)]
    angles = np.deg2rad(
        rng.uniform(top / 2, top, size=len(x)) * rng.choice([-1.0, 1.0], size=len(x))
    )
    centre = (SIDE - 1) / 2.0
    rows, cols = np.meshgrid(np.arange(SIDE) - centre, np.arange(SIDE) - centre, indexing="ij")
    cos, sin = np.cos(angles)[:, None, None], np.sin(angles)[:, None, None]
    src_rows = cos * rows - sin * cols + centre
    src_cols = sin * rows + cos * cols + centre
    index = np.broadcast_to(np.arange(len(x), dtype=np.float64)[:, None, None], src_rows.shape)
    out = ndimage.map_coordinates(
        x, np.stack([index, src_rows, src_cols]), order=1, mode="constant"
    )
    return np.clip(out, 0.0, MAX_PIXEL).reshape(len(x), -1)


def brightness(
    images: np.ndarray, severity: int = 3, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Brighten every pixel by the same amount (saturating at the top of the range)."""
    x = _images(images)
    return np.clip(x + _BRIGHTNESS[_level(severity)] * MAX_PIXEL, 0.0, MAX_PIXEL).reshape(
        len(x), -1
    )


CORRUPTIONS: dict[str, Callable[..., np.ndarray]] = {
    "noise": gaussian_noise,
    "rotation": rotation,
    "brightness": brightness,
}


def corrupt(
    images: np.ndarray, kind: str, severity: int = 3, seed: int | None = None
) -> np.ndarray:
    """Apply corruption ``kind`` (``noise``, ``rotation``, ``brightness``) to rows of pixels."""
    if kind not in CORRUPTIONS:
        raise MonitoringError(f"unknown corruption {kind!r}; use one of {', '.join(CORRUPTIONS)}")
    return CORRUPTIONS[kind](images, severity, np.random.default_rng(seed))


def _images(images: np.ndarray) -> np.ndarray:
    x = np.asarray(images, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != SIDE * SIDE:
        raise MonitoringError(
            f"corruptions take rows of {SIDE * SIDE} pixels (8x8 digits), got shape {x.shape}"
        )
    return x.reshape(-1, SIDE, SIDE)


def _level(severity: int) -> int:
    if severity not in (1, 2, 3, 4, 5):
        raise MonitoringError(f"severity must be 1, 2, 3, 4 or 5, got {severity!r}")
    return severity - 1
