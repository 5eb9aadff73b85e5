"""Distances between standardised rows, shared by the multivariate detectors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import numpy as np

from scanflow.monitoring.profile import ReferenceProfile


def scaler(profile: ReferenceProfile) -> tuple[np.ndarray, np.ndarray]:
    """Mean and spread of the reference sample per numeric feature (spread 1 if constant)."""

    def make() -> tuple[np.ndarray, np.ndarray]:
        sample = profile.reference.sample
        mean = np.nanmean(sample, axis=0) if sample.size else np.zeros(sample.shape[1])
        std = np.nanstd(sample, axis=0) if sample.size else np.ones(sample.shape[1])
        return np.nan_to_num(mean), np.where(np.nan_to_num(std) > 0, std, 1.0)

    return profile.cached("scaler", make)


def standardise(profile: ReferenceProfile, rows: np.ndarray) -> np.ndarray:
    """Rows scaled by the reference; missing values become the reference mean (0)."""
    mean, std = scaler(profile)
    return np.nan_to_num((rows - mean) / std, nan=0.0, posinf=0.0, neginf=0.0)


def sq_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances between the rows of ``a`` and ``b``."""
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d, 0.0)


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run matrix products on one BLAS thread.

    These products are small (a few hundred rows); on a machine whose cores are busy with
    other processes, several BLAS threads make them 2-15 times slower, not faster.
    """
    controller = _controller()
    if controller is None:
        yield
        return
    with controller.limit(limits=1, user_api="blas"):
        yield


@cache
def _controller() -> Any:
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return None
    return ThreadpoolController()
