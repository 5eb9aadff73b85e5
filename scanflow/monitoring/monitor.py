"""A window plus a set of detectors: feed batches, ask for a report."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from scanflow.monitoring.base import Detector, as_summary
from scanflow.monitoring.errors import MonitoringError
from scanflow.monitoring.mmd import MMDDetector
from scanflow.monitoring.outliers import OutlierDetector
from scanflow.monitoring.prediction import PredictionDriftDetector
from scanflow.monitoring.profile import ReferenceProfile
from scanflow.monitoring.psi import PSIDetector
from scanflow.monitoring.result import DriftResult, MonitorReport
from scanflow.monitoring.univariate import FeatureDriftDetector
from scanflow.monitoring.window import Window

logger = logging.getLogger(__name__)


def default_detectors(profile: ReferenceProfile) -> list[Detector]:
    """Per-feature tests, PSI, MMD, outliers, and prediction drift when the profile has it."""
    detectors: list[Detector] = [
        FeatureDriftDetector(),
        PSIDetector(),
        MMDDetector(),
        OutlierDetector(),
    ]
    if profile.predictions is not None:
        detectors.append(PredictionDriftDetector())
    return detectors


class Monitor:
    """Summarises batches into a window and checks it with several detectors.

    The report's verdict is drift when at least ``quorum`` detectors find drift (two by
    default: one detector alone fires on about 5% of clean windows at its own level, two
    together rarely do, while the corruptions this library simulates set off nearly all).
    Window options (``max_rows``, ``max_age``, ``panes``, ``sample_size``, ``seed``,
    ``prediction_column``, ``timestamp_column``) are passed to ``Window``.
    """

    def __init__(
        self,
        profile: ReferenceProfile,
        *,
        detectors: Sequence[Detector] | None = None,
        quorum: int = 2,
        **window: Any,
    ) -> None:
        self.profile = profile
        self.detectors = list(detectors) if detectors is not None else default_detectors(profile)
        names = [d.name for d in self.detectors]
        if len(set(names)) != len(names):
            raise MonitoringError(f"detector names must be unique, got {names}")
        if not self.detectors:
            raise MonitoringError("a monitor needs at least one detector")
        if quorum < 1:
            raise MonitoringError(
                f"quorum must be at least 1 (detectors that must agree), got {quorum}"
            )
        self.quorum = min(quorum, len(self.detectors))
        self.window = Window(profile, **window)

    def update(self, batch: Any, *, predictions: Any = None, timestamps: Any = None) -> int:
        """Summarise a batch into the window; returns the rows added (see ``Window.update``)."""
        return self.window.update(batch, predictions=predictions, timestamps=timestamps)

    def extend(self, batches: Iterable[Any]) -> int:
        """Summarise each batch of an iterable; returns the rows added."""
        return self.window.extend(batches)

    def check(self) -> MonitorReport:
        """Run every detector over the window as it is now."""
        summary = as_summary(self.profile, self.window)
        results: dict[str, DriftResult] = {}
        for detector in self.detectors:
            results[detector.name] = detector.check(self.profile, summary)
        votes = sum(r.drift for r in results.values())
        report = MonitorReport(
            drift=votes >= self.quorum,
            results=results,
            n_current=summary.n_rows,
            watermark=self.window.watermark,
            rule=f"at least {self.quorum} of {len(results)} detectors",
        )
        logger.info(
            "drift check over %d rows: %s (%s)",
            summary.n_rows,
            report.drift,
            ", ".join(report.detectors_in_drift) or "no detector",
        )
        return report


def detect_drift(
    reference: Any,
    current: Any,
    *,
    alpha: float = 0.05,
    correction: str = "bh",
    drift_share: float | None = None,
    **profile_options: Any,
) -> DriftResult:
    """One-shot per-feature drift test of ``current`` rows against ``reference`` rows."""
    profile = ReferenceProfile.fit(reference, **profile_options)
    detector = FeatureDriftDetector(alpha=alpha, correction=correction, drift_share=drift_share)
    return detector.check(profile, current)
