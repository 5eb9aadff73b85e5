"""Scanflow's own state: runs, steps, attempts and the step cache (SQLAlchemy)."""

from scanflow.store import param_models  # noqa: F401 - runs' parameters are indexed rows
from scanflow.store.models import AttemptRecord, CacheEntry, RunRecord, StepRecord
from scanflow.store.store import DONE_OK, TERMINAL, Store

__all__ = ["DONE_OK", "TERMINAL", "AttemptRecord", "CacheEntry", "RunRecord", "StepRecord", "Store"]
