"""What a detector needs to know about a set of rows, without the rows.

A ``Summary`` holds per-feature cell counts (see ``binning``) and a bounded uniform sample
of rows for the multivariate detectors. Summaries add up: the summary of two sets of rows
is the sum of their summaries, so a window grows by summarising only its new rows.
The sample is a bottom-k sample (each row draws a random key; the k smallest keys stay),
which stays uniform when two samples are merged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Summary:
    """Counts and a row sample of one set of rows (features and, optionally, predictions)."""

    n_rows: int
    continuous: np.ndarray  # (continuous features, cells) counts
    categorical: np.ndarray  # (categorical features, cells) counts
    sample: np.ndarray  # (rows kept, numeric features) float64
    keys: np.ndarray  # (rows kept,) random keys of the bottom-k sample
    sample_size: int
    predictions: Summary | None = None
    first_time: float | None = None
    last_time: float | None = None

    def merge(self, other: Summary) -> Summary:
        """The summary of the rows of both."""
        sample, keys = bottom_k(
            np.concatenate([self.sample, other.sample]),
            np.concatenate([self.keys, other.keys]),
            max(self.sample_size, other.sample_size),
        )
        if self.predictions is None:
            predictions = other.predictions
        elif other.predictions is None:
            predictions = self.predictions
        else:
            predictions = self.predictions.merge(other.predictions)
        return Summary(
            n_rows=self.n_rows + other.n_rows,
            continuous=self.continuous + other.continuous,
            categorical=self.categorical + other.categorical,
            sample=sample,
            keys=keys,
            sample_size=max(self.sample_size, other.sample_size),
            predictions=predictions,
            first_time=_pick(min, self.first_time, other.first_time),
            last_time=_pick(max, self.last_time, other.last_time),
        )


def bottom_k(rows: np.ndarray, keys: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` rows with the smallest keys (all of them when there are fewer)."""
    if keys.size <= k:
        return rows, keys
    keep = np.argpartition(keys, k - 1)[:k]
    return rows[keep], keys[keep]


def merge_all(summaries: list[Summary]) -> Summary:
    """The summary of the rows of all ``summaries`` (at least one)."""
    total = summaries[0]
    for summary in summaries[1:]:
        total = total.merge(summary)
    return total


def _pick(fn, a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return fn(a, b)
