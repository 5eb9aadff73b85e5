"""The local engine (embedded default): workflow steps as OS processes on this machine.

Imports are lazy: step processes import ``scanflow.engines.local.step_main`` and must not
pay for the engine's own dependencies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scanflow.engines.local.engine import LocalEngine, StepEvent

__all__ = ["LocalEngine", "StepEvent"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from scanflow.engines.local import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'scanflow.engines.local' has no attribute {name!r}")
