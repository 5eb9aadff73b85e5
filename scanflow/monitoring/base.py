"""What every detector shares: the protocol, and turning "current data" into a summary."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from scanflow.monitoring.errors import MonitoringError
from scanflow.monitoring.profile import ReferenceProfile
from scanflow.monitoring.result import DriftResult
from scanflow.monitoring.summary import Summary


@runtime_checkable
class Detector(Protocol):
    """Compares current data with a reference profile and returns a verdict with evidence."""

    @property
    def name(self) -> str:
        """The detector's name, as reported in results."""
        ...

    def check(self, profile: ReferenceProfile, current: Any) -> DriftResult:
        """``current``: a ``Window``, a ``Summary``, rows (array or DataFrame) or a
        ``(rows, predictions)`` tuple."""
        ...


def as_summary(profile: ReferenceProfile, current: Any, sample_size: int = 500) -> Summary:
    """The summary of ``current`` (see ``Detector.check``); an empty one is an error."""
    from scanflow.monitoring.window import Window

    if isinstance(current, Window):
        summary = current.summary()
    elif isinstance(current, Summary):
        summary = current
    elif isinstance(current, tuple):
        summary = profile.summarise(current[0], predictions=current[1], sample_size=sample_size)
    else:
        summary = (
            profile.summarise(current, sample_size=sample_size)
            if profile.predictions is None
            else _features_only(profile, current, sample_size)
        )
    if summary.n_rows == 0:
        raise MonitoringError(
            "the current window holds no rows; check after some predictions have been "
            "summarised (window.update(...))"
        )
    return summary


def _features_only(profile: ReferenceProfile, current: Any, sample_size: int) -> Summary:
    """Rows without predictions for a profile that has them: features are still checked."""
    bare = ReferenceProfile(
        names=profile.names,
        kinds=profile.kinds,
        positional=profile.positional,
        continuous_bins=profile.continuous_bins,
        categorical_bins=profile.categorical_bins,
        reference=profile.reference,
    )
    return bare.summarise(current, sample_size=sample_size)


def check_alpha(alpha: float) -> None:
    """Significance levels are probabilities strictly between 0 and 1."""
    if not 0.0 < alpha < 1.0:
        raise MonitoringError(f"alpha must be between 0 and 1 (exclusive), got {alpha}")
