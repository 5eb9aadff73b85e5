"""Cells that summarise a column so that later statistics never need its rows again.

Continuous features: the sorted distinct reference values ``u_0 < ... < u_{k-1}`` (or,
past ``max_edges`` distinct values, reference quantiles) cut the line into cells
``(-inf, u_0), {u_0}, (u_0, u_1), {u_1}, ..., {u_{k-1}}, (u_{k-1}, inf)``. Counting rows
per cell keeps both ``F(u_i)`` and ``F(u_i-)``, which is all the two-sample
Kolmogorov-Smirnov statistic needs: with exact edges it equals scipy's ``ks_2samp``
statistic; with quantile edges it is low by at most the reference mass of one cell.
One extra cell at the end counts missing values (NaN, infinite).

Categorical features: one cell per reference category, one for categories never seen in
the reference, one for missing values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scanflow.monitoring.errors import MonitoringError
from scanflow.monitoring.tabular import missing_mask


@dataclass(frozen=True)
class ContinuousBins:
    """Cell edges of the continuous features (one row of ``edges`` per feature)."""

    edges: np.ndarray  # (features, K) sorted, padded with +inf past ``sizes``
    sizes: np.ndarray  # (features,) number of real edges per feature
    exact: np.ndarray  # (features,) edges are every distinct reference value

    @classmethod
    def fit(cls, matrix: np.ndarray, names: list[str], max_edges: int = 2048) -> ContinuousBins:
        """Edges from a reference matrix (rows, features)."""
        per_feature, exact = [], []
        for j in range(matrix.shape[1]):
            values = matrix[:, j]
            values = values[np.isfinite(values)]
            if values.size == 0:
                raise MonitoringError(
                    f"reference feature {names[j]!r} has no finite values; drop it or give "
                    f"reference rows where it is measured"
                )
            distinct = np.unique(values)
            if distinct.size > max_edges:
                grid = np.linspace(0.0, 1.0, max_edges)
                distinct = np.unique(np.quantile(values, grid, method="inverted_cdf"))
                exact.append(False)
            else:
                exact.append(True)
            per_feature.append(distinct)
        sizes = np.array([e.size for e in per_feature], dtype=np.int64)
        edges = np.full((len(per_feature), int(sizes.max(initial=1))), np.inf)
        for j, e in enumerate(per_feature):
            edges[j, : e.size] = e
        return cls(edges=edges, sizes=sizes, exact=np.array(exact, dtype=bool))

    @property
    def n_features(self) -> int:
        return self.edges.shape[0]

    @property
    def n_cells(self) -> int:
        """Cells per feature: 2K+1 value cells and one missing cell."""
        return 2 * self.edges.shape[1] + 2

    def count(self, matrix: np.ndarray) -> np.ndarray:
        """Rows of ``matrix`` (rows, features) counted per cell: (features, n_cells).

        Each column is sorted once; the edges are then located in it (two binary searches
        per edge), which is several times faster than locating every row among the edges.
        """
        n_features, n_cells = self.n_features, self.n_cells
        counts = np.zeros((n_features, n_cells), dtype=np.int64)
        if matrix.shape[0] == 0:
            return counts
        columns = np.ascontiguousarray(matrix.T, dtype=np.float64)
        finite = np.isfinite(columns)
        n_finite = finite.sum(axis=1)
        if not finite.all():
            columns = np.where(finite, columns, np.nan)  # NaN sorts last, past every edge
        columns.sort(axis=1)
        for j in range(n_features):
            k = int(self.sizes[j])
            edges = self.edges[j, :k]
            at_or_below = np.searchsorted(columns[j], edges, side="right")
            below = np.searchsorted(columns[j], edges, side="left")
            counts[j, 1 : 2 * k : 2] = at_or_below - below
            counts[j, 0] = below[0]
            counts[j, 2 : 2 * k - 1 : 2] = below[1:] - at_or_below[:-1]
            counts[j, 2 * k] = n_finite[j] - at_or_below[-1]
        counts[:, -1] = matrix.shape[0] - n_finite
        return counts

    def psi_bins(self, reference_cells: np.ndarray, n_bins: int) -> np.ndarray:
        """Map each cell to one of ``n_bins`` reference-quantile bins (missing cell: ``n_bins``).

        A point cell ``{u_i}`` goes to the bin of the reference mass below it; the open cell
        after it follows it. Heavy points (one value holding many quantiles) keep one bin.
        """
        n_features, n_cells = reference_cells.shape
        values = reference_cells[:, :-1]
        total = np.maximum(values.sum(axis=1, keepdims=True), 1)
        below = (np.cumsum(values, axis=1) - values) / total  # mass strictly before each cell
        points = below[:, 1::2]  # before each point cell {u_i}
        bins_points = np.minimum((points * n_bins).astype(np.int64), n_bins - 1)
        mapping = np.empty((n_features, n_cells), dtype=np.int64)
        mapping[:, 1:-1:2] = bins_points
        mapping[:, 2:-1:2] = bins_points  # open cell after u_i joins u_i
        mapping[:, 0] = 0
        mapping[:, -1] = n_bins
        return mapping


@dataclass(frozen=True)
class CategoricalBins:
    """Reference categories of the categorical features."""

    categories: tuple[np.ndarray, ...]  # sorted; float64 for numeric columns, str otherwise

    @classmethod
    def fit(cls, cols: list[np.ndarray], names: list[str]) -> CategoricalBins:
        """Categories from reference columns."""
        found = []
        for values, name in zip(cols, names, strict=True):
            present = values[~missing_mask(values)]
            if present.size == 0:
                raise MonitoringError(
                    f"reference feature {name!r} has no values; drop it or give reference "
                    f"rows where it is measured"
                )
            found.append(np.unique(_normalise(present)))
        return cls(categories=tuple(found))

    @property
    def n_features(self) -> int:
        return len(self.categories)

    @property
    def n_cells(self) -> int:
        """Cells per feature: the most categories of any feature, unseen, missing."""
        return max((c.size for c in self.categories), default=0) + 2

    def count(self, cols: list[np.ndarray]) -> np.ndarray:
        """Values counted per category cell: (features, n_cells)."""
        n_cells = self.n_cells
        counts = np.zeros((self.n_features, n_cells), dtype=np.int64)
        for j, (values, categories) in enumerate(zip(cols, self.categories, strict=True)):
            missing = missing_mask(values)
            present = _normalise(values[~missing], like=categories)
            pos = np.searchsorted(categories, present)
            pos_clipped = np.minimum(pos, categories.size - 1)
            seen = categories[pos_clipped] == present
            cells = np.where(seen, pos_clipped, n_cells - 2)
            counts[j] = np.bincount(cells, minlength=n_cells)
            counts[j, -1] = int(missing.sum())
        return counts


def _normalise(values: np.ndarray, like: np.ndarray | None = None) -> np.ndarray:
    """Categories as float64 when numeric, else as str (so that sorting and lookup work)."""
    if like is not None and like.dtype.kind != "f":
        return values.astype(str)
    if like is not None:
        try:
            return np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            return np.full(values.size, np.nan)  # numbers expected: every string is unseen
    if values.dtype.kind in "iuf":
        return values.astype(np.float64)
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        return values.astype(str)
