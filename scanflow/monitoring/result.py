"""Results of drift checks: the verdict with the evidence behind it, ready to record."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's test: statistic, p-value before and after correction, verdict."""

    feature: str
    kind: str  # "continuous" or "categorical"
    test: str  # "ks", "chi2", "psi"
    statistic: float
    threshold: float  # what the p-value (or, for PSI, the statistic) is compared with
    drift: bool
    p_value: float | None = None
    adjusted_p_value: float | None = None
    n_reference: int = 0
    n_current: int = 0


@dataclass(frozen=True)
class DriftResult:
    """The verdict of one detector over one window, with its evidence.

    ``statistic`` is the detector's summary figure (share of drifted features, MMD^2,
    outlier rate...) and ``threshold`` what decided the verdict; ``features`` holds the
    per-feature tests of univariate detectors; ``details`` any further figures.
    """

    detector: str
    drift: bool
    statistic: float
    threshold: float
    p_value: float | None = None
    n_reference: int = 0
    n_current: int = 0
    features: tuple[FeatureDrift, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def drifted_features(self) -> list[str]:
        """Names of the features whose own test found drift."""
        return [f.feature for f in self.features if f.drift]

    def feature(self, name: str) -> FeatureDrift:
        """The test of feature ``name``."""
        for f in self.features:
            if f.feature == name:
                return f
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe data (NaN and infinities become None)."""
        return _clean(asdict(self))


@dataclass(frozen=True)
class MonitorReport:
    """The results of several detectors over the same window."""

    drift: bool
    results: dict[str, DriftResult]
    n_current: int
    watermark: float | None = None
    rule: str = "any"

    def __getitem__(self, detector: str) -> DriftResult:
        return self.results[detector]

    @property
    def detectors_in_drift(self) -> list[str]:
        return [name for name, r in self.results.items() if r.drift]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe data, one entry per detector."""
        return _clean(
            {
                "drift": self.drift,
                "rule": self.rule,
                "n_current": self.n_current,
                "watermark": self.watermark,
                "detectors_in_drift": self.detectors_in_drift,
                "results": {k: v.to_dict() for k, v in self.results.items()},
            }
        )


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (ValueError, TypeError):
            return [_clean(v) for v in value.tolist()]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
