"""The local engine (embedded default): workflow steps as OS processes on this machine."""

from scanflow.engines.local.engine import LocalEngine, StepEvent

__all__ = ["LocalEngine", "StepEvent"]
