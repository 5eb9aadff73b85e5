"""The engine protocol: what the CLI and the agents call, whatever runs the work.

An engine runs an application's workflows (:class:`Engine`) and its online services
(:class:`ServiceBackend`). Implementations are picked by name from
:mod:`scanflow.engines.registry`; ``local`` (this machine) is built in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from scanflow.engines.events import StepEvent

if TYPE_CHECKING:
    from scanflow.agents.interfaces import ServiceControl
    from scanflow.spec.loader import Project
    from scanflow.spec.model import Service
    from scanflow.store import RunRecord


@runtime_checkable
class ServiceBackend(Protocol):
    """Runs the online services of one application."""

    def deploy(self, service: Service) -> ServiceControl:
        """Start ``service`` (or update it in place); returns its control once it answers."""
        ...

    def control(self, name: str) -> ServiceControl:
        """The control of service ``name`` (whoever started it)."""
        ...

    def scale(self, name: str, replicas: int) -> dict[str, Any]:
        """Set the replicas (workers, pods) of service ``name``; returns its new status."""
        ...

    def status(self, name: str) -> dict[str, Any]:
        """At least ``ready`` (bool) and ``workers`` (int) of service ``name``."""
        ...

    def delete(self, name: str) -> None:
        """Stop service ``name`` and remove what :meth:`deploy` created."""
        ...


@runtime_checkable
class Engine(Protocol):
    """Runs the workflows of one application; every call names a run by its id."""

    name: str

    def submit(
        self,
        workflow: str,
        parameters: dict[str, Any] | None = None,
        *,
        max_parallel: int | None = None,
        use_cache: bool = True,
    ) -> str:
        """Start ``workflow``; returns the new run's id at once (the run goes on)."""
        ...

    def watch(self, run_id: str) -> Iterator[StepEvent]:
        """The run's events until its last one (whose ``ends_run`` is true)."""
        ...

    def cancel(self, run_id: str) -> None:
        """Stop ``run_id``: running steps are stopped, the run ends ``cancelled``."""
        ...

    def logs(self, run_id: str, step: str | None = None, *, follow: bool = False) -> Iterator[str]:
        """The output of ``step`` (every step when None), attempt by attempt, in chunks;
        with ``follow``, until the run ends."""
        ...

    def get_run(self, run_id: str) -> RunRecord:
        """The current record of ``run_id`` (a unique prefix is enough)."""
        ...

    def resume(
        self, run_id: str, *, max_parallel: int | None = None, use_cache: bool = True
    ) -> str:
        """Start again the steps of ``run_id`` that did not succeed; returns ``run_id``."""
        ...

    def services(self) -> ServiceBackend:
        """The backend of this application's online services."""
        ...


def declared_service(project: Project, name: str) -> Service:
    """The service ``name`` the application declares; :class:`EngineError` lists the known."""
    from scanflow.errors import EngineError

    for service in project.app.services:
        if service.name == name:
            return service
    known = ", ".join(s.name for s in project.app.services) or "none"
    raise EngineError(f"no service {name!r} in application {project.app.name!r} (known: {known})")


def follow(
    engine: Engine, run_id: str, on_event: Callable[[StepEvent], None] | None = None
) -> RunRecord:
    """Watch ``run_id`` to its end (each event to ``on_event``); returns its final record.

    Ctrl-C (KeyboardInterrupt) while watching cancels the run, then waits for it to end.
    """
    seen = 0

    def drain() -> None:
        nonlocal seen
        for number, event in enumerate(engine.watch(run_id)):
            if number >= seen:  # a second watch replays: show only what is new
                seen += 1
                if on_event is not None:
                    on_event(event)

    try:
        drain()
    except KeyboardInterrupt:
        engine.cancel(run_id)
        drain()
    return engine.get_run(run_id)


def run_to_end(
    engine: Engine, workflow: str, parameters: dict[str, Any] | None = None, **options: Any
) -> RunRecord:
    """Submit ``workflow`` and :func:`follow` it to its end."""
    return follow(engine, engine.submit(workflow, parameters, **options))


def resume_to_end(engine: Engine, run_id: str, **options: Any) -> RunRecord:
    """Resume ``run_id`` and :func:`follow` it to its end."""
    return follow(engine, engine.resume(run_id, **options))
