"""Scanflow: an autonomic MLOps platform on MLflow.

``import scanflow`` stays light: the application model is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "Application": "scanflow.spec",
    "Workflow": "scanflow.spec",
    "Executor": "scanflow.spec",
    "Service": "scanflow.spec",
    "Agent": "scanflow.spec",
    "Tracker": "scanflow.spec",
    "ScanflowError": "scanflow.errors",
}

if TYPE_CHECKING:
    from scanflow.errors import ScanflowError  # noqa: F401
    from scanflow.spec import (  # noqa: F401
        Agent,
        Application,
        Executor,
        Service,
        Tracker,
        Workflow,
    )

__all__ = [*_LAZY, "__version__"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'scanflow' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
