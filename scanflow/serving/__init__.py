"""Online serving: OIP v2 and MLflow ``/invocations``, micro-batching, live worker scaling,
registry-following hot-swap and a prediction log (see ``docs/serving.md``).

Heavy modules load lazily: ``from scanflow.serving import ServingClient`` imports httpx only.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "ServeOptions": "scanflow.serving.options",
    "Supervisor": "scanflow.serving.supervisor",
    "ServingClient": "scanflow.serving.client",
    "ServiceProcess": "scanflow.serving.process",
    "PredictionLog": "scanflow.serving.predictions",
    "Cursor": "scanflow.serving.predictions",
    "load_model": "scanflow.serving.model",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'scanflow.serving' has no attribute {name!r}")
