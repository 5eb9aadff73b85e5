"""Reference profile: what the detectors compare new data against, fitted once.

The profile decides each feature's kind (continuous or categorical), fixes the cells
each feature is counted in, and keeps the reference's own summary (counts and a row
sample). Checking a window then needs the profile and the window's summary only.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scanflow.monitoring import tabular
from scanflow.monitoring.binning import CategoricalBins, ContinuousBins
from scanflow.monitoring.errors import MonitoringError
from scanflow.monitoring.summary import Summary

logger = logging.getLogger(__name__)

CONTINUOUS = "continuous"
CATEGORICAL = "categorical"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ReferenceProfile:
    """Features, their kinds and cells, and the summary of the reference rows."""

    names: tuple[str, ...]
    kinds: tuple[str, ...]
    positional: bool
    continuous_bins: ContinuousBins
    categorical_bins: CategoricalBins
    reference: Summary
    predictions: ReferenceProfile | None = None
    _cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    # -- building -------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        data: Any,
        *,
        predictions: Any = None,
        feature_names: Sequence[str] | None = None,
        categorical: Sequence[str] = (),
        continuous: Sequence[str] = (),
        categorical_max_unique: int = 5,
        max_edges: int = 2048,
        sample_size: int = 1000,
        seed: int = 0,
    ) -> ReferenceProfile:
        """Profile the reference rows ``data`` (2-D array or DataFrame).

        A feature is categorical when named in ``categorical``, when its values are not
        numbers, or when it has at most ``categorical_max_unique`` distinct reference values
        (unless named in ``continuous``); the others are continuous. ``predictions`` (model
        outputs on the reference rows: labels, scores or a probability matrix) enable the
        prediction-drift detector. ``sample_size`` reference rows are kept for the
        multivariate and outlier detectors.
        """
        if sample_size < 2:
            raise MonitoringError(f"sample_size must be at least 2, got {sample_size}")
        if max_edges < 2:
            raise MonitoringError(f"max_edges must be at least 2, got {max_edges}")
        names, positional = tabular.column_names(data)
        if feature_names is not None:
            if tabular.is_frame(data):
                names = [str(n) for n in feature_names]
                positional = False
            elif len(feature_names) != len(names):
                raise MonitoringError(
                    f"feature_names has {len(feature_names)} name(s) but the reference has "
                    f"{len(names)} column(s); give one name per column"
                )
            else:
                names, positional = [str(n) for n in feature_names], False
        n = tabular.n_rows(data)
        if n < 2:
            raise MonitoringError(
                f"the reference has {n} row(s); a reference profile needs at least 2 rows "
                f"(hundreds for useful tests)"
            )
        unknown = [c for c in [*categorical, *continuous] if c not in names]
        if unknown:
            raise MonitoringError(
                f"categorical/continuous name(s) {unknown} are not reference columns; "
                f"columns are {names[:8]}{'...' if len(names) > 8 else ''}"
            )
        both = set(categorical) & set(continuous)
        if both:
            raise MonitoringError(
                f"feature(s) {sorted(both)} are declared both categorical and continuous"
            )
        cols = tabular.columns(data, names, positional, "reference")
        kinds = [
            _kind(c, name, set(categorical), set(continuous), categorical_max_unique)
            for c, name in zip(cols, names, strict=True)
        ]
        cont = [j for j, k in enumerate(kinds) if k == CONTINUOUS]
        cat = [j for j, k in enumerate(kinds) if k == CATEGORICAL]
        matrix = np.empty((n, len(cont)), dtype=np.float64)
        for k, j in enumerate(cont):
            matrix[:, k] = np.asarray(cols[j], dtype=np.float64)
        continuous_bins = ContinuousBins.fit(matrix, [names[j] for j in cont], max_edges)
        categorical_bins = CategoricalBins.fit([cols[j] for j in cat], [names[j] for j in cat])
        pred_profile = None
        if predictions is not None:
            pred_profile = _fit_predictions(predictions, n, max_edges)
        profile = cls(
            names=tuple(names),
            kinds=tuple(kinds),
            positional=positional,
            continuous_bins=continuous_bins,
            categorical_bins=categorical_bins,
            reference=_empty_summary(continuous_bins, categorical_bins, sample_size),
            predictions=pred_profile,
        )
        reference = profile.summarise(
            data, predictions=predictions, sample_size=sample_size, rng=np.random.default_rng(seed)
        )
        object.__setattr__(profile, "reference", reference)
        logger.debug(
            "profiled %d reference rows: %d continuous, %d categorical features",
            n,
            len(cont),
            len(cat),
        )
        return profile

    # -- using ----------------------------------------------------------------------
    @property
    def continuous_names(self) -> list[str]:
        return [n for n, k in zip(self.names, self.kinds, strict=True) if k == CONTINUOUS]

    @property
    def categorical_names(self) -> list[str]:
        return [n for n, k in zip(self.names, self.kinds, strict=True) if k == CATEGORICAL]

    def summarise(
        self,
        data: Any,
        *,
        predictions: Any = None,
        timestamps: Any = None,
        sample_size: int = 500,
        rng: np.random.Generator | None = None,
    ) -> Summary:
        """Summarise rows shaped like the reference (features, and predictions if profiled)."""
        rng = rng if rng is not None else np.random.default_rng()
        m = tabular.n_rows(data)
        cont = [j for j, k in enumerate(self.kinds) if k == CONTINUOUS]
        cat = [j for j, k in enumerate(self.kinds) if k == CATEGORICAL]
        matrix = tabular.float_matrix(data, self.names, self.positional, cont, "current data")
        cat_cols = tabular.columns(data, self.names, self.positional, "current data", cat)
        keys = rng.random(m)
        keep = (
            np.arange(m)
            if m <= sample_size
            else np.argpartition(keys, sample_size - 1)[:sample_size]
        )
        sample = self._sample(matrix, cat_cols, keep)
        pred_summary = None
        if self.predictions is not None:
            if predictions is None:
                raise MonitoringError(
                    "the reference profile has predictions but none were given with these "
                    "rows; pass predictions=... (the model outputs for the same rows)"
                )
            if tabular.n_rows(predictions) != m:
                raise MonitoringError(
                    f"{tabular.n_rows(predictions)} prediction(s) for {m} row(s); give one "
                    f"prediction per row"
                )
            pred_summary = self.predictions.summarise(predictions, sample_size=sample_size, rng=rng)
        first = last = None
        if timestamps is not None and m:
            times = np.asarray(timestamps, dtype=np.float64)
            first, last = float(times.min()), float(times.max())
        return Summary(
            n_rows=m,
            continuous=self.continuous_bins.count(matrix),
            categorical=self.categorical_bins.count(cat_cols),
            sample=sample,
            keys=keys[keep],
            sample_size=sample_size,
            predictions=pred_summary,
            first_time=first,
            last_time=last,
        )

    def empty_summary(self, sample_size: int = 500) -> Summary:
        """The summary of no rows (a starting point for windows)."""
        pred = self.predictions.empty_summary(sample_size) if self.predictions else None
        empty = _empty_summary(self.continuous_bins, self.categorical_bins, sample_size)
        return Summary(**{**empty.__dict__, "predictions": pred})

    def _sample(
        self, matrix: np.ndarray, cat_cols: list[np.ndarray], keep: np.ndarray
    ) -> np.ndarray:
        parts = [matrix[keep]]
        for values, categories in zip(cat_cols, self.categorical_bins.categories, strict=True):
            if categories.dtype.kind == "f":
                parts.append(np.asarray(values[keep], dtype=np.float64).reshape(-1, 1))
        return np.hstack(parts) if parts else np.empty((keep.size, 0))

    def sample_rows(self, data: Any) -> np.ndarray:
        """All rows of ``data`` as the float matrix of numeric features the sample uses."""
        m = tabular.n_rows(data)
        cont = [j for j, k in enumerate(self.kinds) if k == CONTINUOUS]
        cat = [j for j, k in enumerate(self.kinds) if k == CATEGORICAL]
        matrix = tabular.float_matrix(data, self.names, self.positional, cont, "rows")
        cat_cols = tabular.columns(data, self.names, self.positional, "rows", cat)
        return self._sample(matrix, cat_cols, np.arange(m))

    def cached(self, key: str, make: Any) -> Any:
        """A value derived from the profile alone, computed once (bandwidths, bin maps)."""
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    # -- persistence ----------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the profile to one ``.npz`` file (no pickles); returns the path."""
        path = Path(path)
        arrays: dict[str, np.ndarray] = {}
        meta = _dump(self, "", arrays)
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        with path.open("wb") as fh:
            np.savez_compressed(fh, **arrays)  # type: ignore[arg-type]
        return path

    @classmethod
    def load(cls, path: str | Path) -> ReferenceProfile:
        """Read a profile written by ``save``."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
            meta = json.loads(arrays.pop("meta").tobytes().decode())
        except (OSError, ValueError, KeyError) as exc:
            raise MonitoringError(
                f"cannot read a reference profile from {path}: {exc}; write it with "
                f"ReferenceProfile.save"
            ) from None
        if meta.get("version") != FORMAT_VERSION:
            raise MonitoringError(
                f"{path} holds profile format {meta.get('version')}, this Scanflow reads "
                f"{FORMAT_VERSION}; fit the profile again"
            )
        return _load(meta, arrays)


def _kind(
    values: np.ndarray, name: str, categorical: set[str], continuous: set[str], max_unique: int
) -> str:
    if name in categorical:
        return CATEGORICAL
    numeric = tabular.is_numeric(values) and values.dtype.kind != "b"
    if name in continuous:
        if not numeric:
            raise MonitoringError(
                f"feature {name!r} is declared continuous but holds non-numeric values; "
                f"declare it categorical or send numbers"
            )
        return CONTINUOUS
    if not numeric:
        return CATEGORICAL
    floats = np.asarray(values, dtype=np.float64)
    distinct = np.unique(floats[np.isfinite(floats)])
    return CATEGORICAL if distinct.size <= max_unique else CONTINUOUS


def _fit_predictions(predictions: Any, n: int, max_edges: int) -> ReferenceProfile:
    if tabular.n_rows(predictions) != n:
        raise MonitoringError(
            f"{tabular.n_rows(predictions)} reference prediction(s) for {n} reference row(s); "
            f"give one prediction per row"
        )
    names, _ = tabular.column_names(predictions, prefix="prediction_")
    if not tabular.is_frame(predictions) and np.ndim(predictions) == 1:
        names = ["prediction"]
    categorical: list[str] = []
    if len(names) == 1:
        values = tabular.columns(predictions, names, True, "predictions")[0]
        if _looks_like_labels(values):
            categorical = names
    return ReferenceProfile.fit(
        predictions,
        feature_names=names if not tabular.is_frame(predictions) else None,
        categorical=categorical,
        categorical_max_unique=0,
        max_edges=max_edges,
        sample_size=2,
    )


def _looks_like_labels(values: np.ndarray) -> bool:
    """Class labels rather than scores: non-float values, or few whole numbers."""
    if not tabular.is_numeric(values) or values.dtype.kind in "iub":
        return True
    floats = np.asarray(values, dtype=np.float64)
    floats = floats[np.isfinite(floats)]
    return bool(np.all(floats == np.round(floats)) and np.unique(floats).size <= 100)


def _empty_summary(cont: ContinuousBins, cat: CategoricalBins, sample_size: int) -> Summary:
    n_numeric = cont.n_features + sum(c.dtype.kind == "f" for c in cat.categories)
    return Summary(
        n_rows=0,
        continuous=np.zeros((cont.n_features, cont.n_cells), dtype=np.int64),
        categorical=np.zeros((cat.n_features, cat.n_cells), dtype=np.int64),
        sample=np.empty((0, n_numeric)),
        keys=np.empty(0),
        sample_size=sample_size,
    )


def _dump(profile: ReferenceProfile, prefix: str, arrays: dict[str, np.ndarray]) -> dict:
    ref = profile.reference
    arrays.update(
        {
            f"{prefix}edges": profile.continuous_bins.edges,
            f"{prefix}sizes": profile.continuous_bins.sizes,
            f"{prefix}exact": profile.continuous_bins.exact,
            f"{prefix}continuous": ref.continuous,
            f"{prefix}categorical": ref.categorical,
            f"{prefix}sample": ref.sample,
            f"{prefix}keys": ref.keys,
        }
    )
    categories: list[list[str] | None] = []
    for j, c in enumerate(profile.categorical_bins.categories):
        if c.dtype.kind == "f":
            arrays[f"{prefix}cat{j}"] = c
            categories.append(None)
        else:
            categories.append([str(v) for v in c])
    meta = {
        "version": FORMAT_VERSION,
        "names": list(profile.names),
        "kinds": list(profile.kinds),
        "positional": profile.positional,
        "n_rows": ref.n_rows,
        "sample_size": ref.sample_size,
        "categories": categories,
        "predictions": None,
    }
    if profile.predictions is not None:
        meta["predictions"] = _dump(profile.predictions, prefix + "pred_", arrays)
    return meta


def _load(meta: dict, arrays: dict[str, np.ndarray], prefix: str = "") -> ReferenceProfile:
    categories = tuple(
        arrays[f"{prefix}cat{j}"] if c is None else np.array(c, dtype=str)
        for j, c in enumerate(meta["categories"])
    )
    predictions = None
    if meta["predictions"] is not None:
        predictions = _load(meta["predictions"], arrays, prefix + "pred_")
    reference = Summary(
        n_rows=int(meta["n_rows"]),
        continuous=arrays[f"{prefix}continuous"],
        categorical=arrays[f"{prefix}categorical"],
        sample=arrays[f"{prefix}sample"],
        keys=arrays[f"{prefix}keys"],
        sample_size=int(meta["sample_size"]),
        predictions=predictions.reference if predictions is not None else None,
    )
    return ReferenceProfile(
        names=tuple(meta["names"]),
        kinds=tuple(meta["kinds"]),
        positional=bool(meta["positional"]),
        continuous_bins=ContinuousBins(
            edges=arrays[f"{prefix}edges"],
            sizes=arrays[f"{prefix}sizes"],
            exact=arrays[f"{prefix}exact"],
        ),
        categorical_bins=CategoricalBins(categories=categories),
        reference=reference,
        predictions=predictions,
    )


__all__ = ["CATEGORICAL", "CONTINUOUS", "ReferenceProfile"]
