"""Errors of batch scoring: each names the file, the chunk or the option, and the fix."""

from __future__ import annotations

from scanflow.errors import ScanflowError


class BatchError(ScanflowError):
    """Batch scoring cannot start or go on (bad option, missing model or columns)."""


class BatchInputError(BatchError):
    """A row, chunk or file of the input cannot be read as the model needs it."""
