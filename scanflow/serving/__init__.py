"""Online serving: OIP v2 and MLflow ``/invocations``, micro-batching, live worker scaling,
registry-following hot-swap and a prediction log (see ``docs/serving.md``).

Heavy modules load lazily: ``from scanflow.serving import ServingClient`` imports httpx only.
"""

from __future__ import annotations

from scanflow.lazy import lazy_exports

_LAZY = {
    "ServeOptions": "scanflow.serving.options",
    "Supervisor": "scanflow.serving.supervisor",
    "ServingClient": "scanflow.serving.client",
    "ServiceProcess": "scanflow.serving.process",
    "PredictionLog": "scanflow.serving.predictions",
    "Cursor": "scanflow.serving.predictions",
    "load_model": "scanflow.serving.model",
}

__getattr__, __all__ = lazy_exports(__name__, _LAZY)
