"""Windows over a stream of batches: each row is summarised once, when it arrives.

A window keeps its rows as a few *panes* (summaries of consecutive rows). A check merges
the panes (cost independent of how many rows they hold); expiring old rows drops whole
panes. Nothing in a window ever re-reads a row it has summarised.

The watermark is the latest timestamp summarised so far. With timestamps, rows at or
before the watermark are skipped, so re-delivering a batch (or reading a log again from
its start) never counts rows twice.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from scanflow.monitoring import tabular
from scanflow.monitoring.errors import MonitoringError
from scanflow.monitoring.profile import ReferenceProfile
from scanflow.monitoring.summary import Summary, merge_all

logger = logging.getLogger(__name__)


@dataclass
class _Pane:
    key: int  # pane number: row-count panes count up, time panes are floor(t / width)
    summary: Summary


class Window:
    """A sliding (or growing) window of rows summarised against a reference profile.

    ``max_rows``: keep about the last ``max_rows`` rows (expired ``max_rows / panes`` at a
    time). ``max_age``: keep rows whose timestamp is within ``max_age`` seconds of the
    watermark (needs timestamps). Neither: keep everything until ``reset()``.
    """

    def __init__(
        self,
        profile: ReferenceProfile,
        *,
        max_rows: int | None = None,
        max_age: float | None = None,
        panes: int = 10,
        sample_size: int = 500,
        seed: int | None = 0,
        prediction_column: str | None = None,
        timestamp_column: str | None = None,
    ) -> None:
        if max_rows is not None and max_age is not None:
            raise MonitoringError("give a window max_rows or max_age, not both")
        if max_rows is not None and max_rows < 1:
            raise MonitoringError(f"window max_rows must be at least 1, got {max_rows}")
        if max_age is not None and not max_age > 0:
            raise MonitoringError(
                f"window max_age must be a positive number of seconds, got {max_age}"
            )
        if panes < 1:
            raise MonitoringError(f"window panes must be at least 1, got {panes}")
        if sample_size < 2:
            raise MonitoringError(f"window sample_size must be at least 2, got {sample_size}")
        self.profile = profile
        self.max_rows = max_rows
        self.max_age = max_age
        self.pane_rows = max(1, math.ceil(max_rows / panes)) if max_rows else None
        self.pane_seconds = max_age / panes if max_age else None
        self.sample_size = sample_size
        self.prediction_column = prediction_column
        self.timestamp_column = timestamp_column
        self._rng = np.random.default_rng(seed)
        self._panes: deque[_Pane] = deque()
        self.watermark: float | None = None
        self.rows_seen = 0  # rows summarised since creation
        self.rows_skipped = 0  # rows at or before the watermark, not summarised again

    # -- feeding --------------------------------------------------------------------
    def update(self, batch: Any, *, predictions: Any = None, timestamps: Any = None) -> int:
        """Summarise the new rows of ``batch``; returns how many rows were added.

        ``predictions`` and ``timestamps`` are arrays with one value per row, or names of
        columns of a DataFrame ``batch`` (defaults: the window's ``prediction_column`` and
        ``timestamp_column``).
        """
        predictions = _column(
            batch, predictions if predictions is not None else self.prediction_column
        )
        timestamps = _column(batch, timestamps if timestamps is not None else self.timestamp_column)
        m = tabular.n_rows(batch)
        if m == 0:
            return 0
        times = None
        if timestamps is not None:
            times = np.asarray(timestamps, dtype=np.float64)
            if times.shape != (m,) or not np.all(np.isfinite(times)):
                raise MonitoringError(
                    f"timestamps must be {m} finite numbers (one per row), got shape "
                    f"{times.shape}; pass seconds since the epoch"
                )
            if self.watermark is not None:
                fresh = times > self.watermark
                if not fresh.all():
                    self.rows_skipped += int((~fresh).sum())
                    batch, predictions, times = (
                        _take(batch, fresh),
                        _take(predictions, fresh),
                        times[fresh],
                    )
                    m = int(fresh.sum())
                    if m == 0:
                        return 0
        elif self.max_age is not None:
            raise MonitoringError(
                "this window keeps rows by age (max_age) and needs timestamps; pass "
                "timestamps=... or timestamp_column=..."
            )
        if self.pane_rows is not None:
            self._add_by_count(batch, predictions, times, m)
        elif self.pane_seconds is not None and times is not None:
            self._add_by_time(batch, predictions, times, self.pane_seconds)
        else:
            self._add(0, batch, predictions, times)
        self.rows_seen += m
        if times is not None:
            top = float(times.max())
            self.watermark = top if self.watermark is None else max(self.watermark, top)
        self._expire()
        return m

    def extend(self, batches: Iterable[Any]) -> int:
        """Summarise each batch of an iterable (arrays, DataFrames, ``(features,
        predictions[, timestamps])`` tuples or mappings with those keys); returns rows added."""
        added = 0
        for batch in batches:
            if isinstance(batch, tuple):
                added += self.update(
                    batch[0],
                    predictions=batch[1] if len(batch) > 1 else None,
                    timestamps=batch[2] if len(batch) > 2 else None,
                )
            elif isinstance(batch, Mapping):
                added += self.update(
                    batch["features"],
                    predictions=batch.get("predictions"),
                    timestamps=batch.get("timestamps"),
                )
            else:
                added += self.update(batch)
        return added

    def reset(self) -> None:
        """Forget the rows in the window (the watermark stays: old rows stay skipped)."""
        self._panes.clear()

    # -- reading --------------------------------------------------------------------
    @property
    def n_rows(self) -> int:
        """Rows in the window now."""
        return sum(p.summary.n_rows for p in self._panes)

    def summary(self) -> Summary:
        """The summary of the rows in the window (merges panes; reads no rows)."""
        if not self._panes:
            return self.profile.empty_summary(self.sample_size)
        return merge_all([p.summary for p in self._panes])

    # -- panes ----------------------------------------------------------------------
    def _add(self, key: int, batch: Any, predictions: Any, times: np.ndarray | None) -> None:
        summary = self.profile.summarise(
            batch,
            predictions=predictions,
            timestamps=times,
            sample_size=self.sample_size,
            rng=self._rng,
        )
        for pane in self._panes:
            if pane.key == key:
                pane.summary = pane.summary.merge(summary)
                return
        self._panes.append(_Pane(key, summary))
        self._panes = deque(sorted(self._panes, key=lambda p: p.key))

    def _add_by_count(self, batch: Any, predictions: Any, times: np.ndarray | None, m: int) -> None:
        max_rows, pane_rows = self.max_rows, self.pane_rows
        assert max_rows is not None and pane_rows is not None  # a window kept by row count
        start = 0
        if m >= max_rows:  # older rows of this batch would expire at once: skip them
            next_key = self._panes[-1].key + 1 if self._panes else 0
            self._panes.clear()
            self._panes.append(_Pane(next_key, self.profile.empty_summary(self.sample_size)))
            start = m - max_rows
        while start < m:
            last = self._panes[-1] if self._panes else None
            if last is None or last.summary.n_rows >= pane_rows:
                key = last.key + 1 if last else 0
                room = pane_rows
            else:
                key, room = last.key, pane_rows - last.summary.n_rows
            stop = min(m, start + room)
            part = slice(start, stop)
            self._add(
                key,
                _slice(batch, part),
                _slice(predictions, part),
                None if times is None else times[part],
            )
            start = stop

    def _add_by_time(
        self, batch: Any, predictions: Any, times: np.ndarray, pane_seconds: float
    ) -> None:
        keys = np.floor(times / pane_seconds).astype(np.int64)
        for key in np.unique(keys):
            mask = keys == key
            self._add(int(key), _take(batch, mask), _take(predictions, mask), times[mask])

    def _expire(self) -> None:
        if self.max_rows is not None:
            while (
                len(self._panes) > 1
                and self.n_rows - self._panes[0].summary.n_rows >= self.max_rows
            ):
                self._panes.popleft()
        if self.max_age is not None and self.watermark is not None and self.pane_seconds:
            horizon = self.watermark - self.max_age
            while self._panes and (self._panes[0].key + 1) * self.pane_seconds <= horizon:
                self._panes.popleft()


def _column(batch: Any, value: Any) -> Any:
    if isinstance(value, str):
        if not tabular.is_frame(batch):
            raise MonitoringError(
                f"column name {value!r} given for a batch that is not a DataFrame; pass an "
                f"array instead"
            )
        if value not in batch.columns:
            raise MonitoringError(
                f"batch has no column {value!r}; it has {list(batch.columns)[:8]}"
            )
        return batch[value].to_numpy()
    return value


def _take(data: Any, mask: np.ndarray) -> Any:
    if data is None:
        return None
    if tabular.is_frame(data):
        return data.iloc[np.flatnonzero(mask)]
    return np.asarray(data)[mask]


def _slice(data: Any, part: slice) -> Any:
    if data is None:
        return None
    if tabular.is_frame(data):
        return data.iloc[part]
    return np.asarray(data)[part]
