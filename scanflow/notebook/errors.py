"""The error of notebook conversion, verification and notebook steps."""

from __future__ import annotations

from scanflow.errors import ScanflowError


class NotebookError(ScanflowError):
    """A notebook cannot be converted, run or verified; the message names the cell."""
