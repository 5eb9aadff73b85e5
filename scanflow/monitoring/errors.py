"""Errors of the monitoring library."""

from __future__ import annotations

from scanflow.errors import ScanflowError


class MonitoringError(ScanflowError):
    """Data given to a profile, window or detector cannot be used as asked."""
