"""Drift and outlier detection over windows of predictions, against a reference profile.

Fit a profile once on reference rows, feed batches to a window (each row is summarised
once), and check the window with detectors::

    from scanflow.monitoring import Monitor, ReferenceProfile

    profile = ReferenceProfile.fit(x_train, predictions=model.predict(x_train))
    monitor = Monitor(profile, max_rows=2000)
    monitor.update(batch, predictions=outputs, timestamps=times)
    report = monitor.check()   # report.drift, report["features"].drifted_features, ...

Imports numpy and scipy only.
"""

from scanflow.monitoring.base import Detector
from scanflow.monitoring.corruptions import CORRUPTIONS, corrupt
from scanflow.monitoring.errors import MonitoringError
from scanflow.monitoring.mmd import MMDDetector
from scanflow.monitoring.monitor import Monitor, default_detectors, detect_drift
from scanflow.monitoring.outliers import OutlierDetector
from scanflow.monitoring.prediction import PredictionDriftDetector
from scanflow.monitoring.profile import ReferenceProfile
from scanflow.monitoring.psi import PSIDetector
from scanflow.monitoring.result import DriftResult, FeatureDrift, MonitorReport
from scanflow.monitoring.stats import adjust_pvalues
from scanflow.monitoring.summary import Summary
from scanflow.monitoring.univariate import FeatureDriftDetector
from scanflow.monitoring.window import Window

__all__ = [
    "CORRUPTIONS",
    "Detector",
    "DriftResult",
    "FeatureDrift",
    "FeatureDriftDetector",
    "MMDDetector",
    "Monitor",
    "MonitorReport",
    "MonitoringError",
    "OutlierDetector",
    "PSIDetector",
    "PredictionDriftDetector",
    "ReferenceProfile",
    "Summary",
    "Window",
    "adjust_pvalues",
    "corrupt",
    "default_detectors",
    "detect_drift",
]
