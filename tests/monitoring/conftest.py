"""Digits split into reference and held-out rows, and one classifier for the whole session."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from scanflow.monitoring import ReferenceProfile


@dataclass(frozen=True)
class Digits:
    reference: np.ndarray
    reference_labels: np.ndarray
    held_out: np.ndarray
    held_out_labels: np.ndarray


@pytest.fixture(scope="session")
def digits() -> Digits:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    ref, rest = order[:900], order[900:]
    return Digits(x[ref], y[ref], x[rest], y[rest])


@pytest.fixture(scope="session", autouse=True)
def _one_blas_thread():
    """One BLAS thread: on a busy 2-core machine, more threads make small matrix work crawl."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="session")
def model(digits: Digits):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    return classifier.fit(digits.reference, digits.reference_labels)


@pytest.fixture(scope="session")
def profile(digits: Digits, model) -> ReferenceProfile:
    """Digits reference profile with the model's predictions."""
    return ReferenceProfile.fit(digits.reference, predictions=model.predict(digits.reference))


def window_of(rows: np.ndarray, size: int, seed: int) -> np.ndarray:
    """``size`` rows drawn without replacement (the seed picks which)."""
    pick = np.random.default_rng(seed).choice(len(rows), size=size, replace=False)
    return rows[pick]
