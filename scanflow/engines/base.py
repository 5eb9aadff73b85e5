"""The engine interface: what agents and the CLI call, whatever runs the work.

Two implementations are planned: ``local`` (this machine; the embedded default) and
``kubernetes``. Agents and commands talk only to this interface.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from scanflow.store import RunRecord


@runtime_checkable
class Engine(Protocol):
    """Runs the workflows of one application."""

    def run_workflow(
        self,
        workflow: str,
        parameters: dict[str, Any] | None = None,
        *,
        max_parallel: int | None = None,
        use_cache: bool = True,
    ) -> RunRecord:
        """Run ``workflow`` to its end and return the finished run."""
        ...

    def resume_run(self, run_id: str) -> RunRecord:
        """Re-run what did not succeed in ``run_id``."""
        ...

    def get_run(self, run_id: str) -> RunRecord:
        """The current record of ``run_id``."""
        ...

    def cancel(self) -> None:
        """Stop what this engine is running."""
        ...
