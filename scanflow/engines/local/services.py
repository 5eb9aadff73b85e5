"""The local service backend: each service a ``scanflow serve`` process on this machine,
reached over HTTP at its port with the application's token."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from scanflow.errors import EngineError
from scanflow.spec.loader import Project

if TYPE_CHECKING:
    from scanflow.agents.clients import HttpServiceControl
    from scanflow.serving.process import ServiceProcess
    from scanflow.spec.model import Service

log = logging.getLogger(__name__)

READY_SECONDS = 120.0


class LocalServices:
    """Services of one project as child processes of this one (``scanflow up`` runs them
    the same way); a service started elsewhere is still reached at its declared port."""

    def __init__(
        self,
        project: Project,
        *,
        tracking_uri: str | None = None,
        ready_timeout: float = READY_SECONDS,
    ) -> None:
        self.project = project
        self.tracking_uri = tracking_uri
        self.ready_timeout = ready_timeout
        self._processes: dict[str, ServiceProcess] = {}

    def spec(self, name: str) -> Service:
        """The declared service ``name``."""
        from scanflow.engines.base import declared_service

        return declared_service(self.project, name)

    def deploy(self, service: Service, *, port: int | None = None) -> HttpServiceControl:
        """Start ``service`` at ``port`` (default: its declared one) and wait until it
        answers; a service this backend already runs is returned as it is."""
        from scanflow.serving.process import ServiceProcess
        from scanflow.tracking.config import tracking_uri

        running = self._processes.get(service.name)
        if running is not None and running.proc.poll() is None:
            return self.control(service.name)
        port = port or service.port
        if port is None:
            raise EngineError(
                f"service {service.name!r} has no 'port' in scanflow.yaml; add one (e.g. "
                "'port: 8080') so that clients and agents can reach it"
            )
        log_file = self.project.state_dir / "serving" / service.name / "server.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        process = ServiceProcess(
            service,
            port=port,
            state_dir=self.project.state_dir,
            tracking_uri=self.tracking_uri or tracking_uri(self.project.app, self.project.base_dir),
            log_file=log_file,
        )
        self._processes[service.name] = process
        try:
            process.wait_ready(self.ready_timeout, model=False)
        except Exception:
            self.delete(service.name)
            raise
        log.info("service %s answers at %s", service.name, process.url)
        return self.control(service.name)

    def control(self, name: str) -> HttpServiceControl:
        """The control of service ``name``: the process started here, else its declared port."""
        from scanflow.agents.clients import HttpServiceControl
        from scanflow.auth import app_token

        process = self._processes.get(name)
        if process is not None:
            return HttpServiceControl(process.url, token=process.token)
        spec = self.spec(name)
        if spec.port is None:
            raise EngineError(
                f"service {name!r} has no 'port' in scanflow.yaml; agents reach services at "
                "their declared port: add one"
            )
        return HttpServiceControl(
            f"http://127.0.0.1:{spec.port}", token=app_token(self.project.state_dir)
        )

    def scale(self, name: str, replicas: int) -> dict[str, Any]:
        """Grow or shrink the workers of ``name`` and wait until the pool has settled."""
        with self.control(name) as control:
            return control.scale(replicas)

    def status(self, name: str) -> dict[str, Any]:
        """The status of ``name``; ``ready`` False (with ``error``) when it does not answer."""
        with self.control(name) as control:
            return control.status()

    def delete(self, name: str) -> None:
        """Stop service ``name`` (SIGTERM, a graceful drain, then SIGKILL)."""
        process = self._processes.pop(name, None)
        if process is None:
            self.spec(name)
            raise EngineError(
                f"service {name!r} was not started by this process; stop it where it runs "
                "(Ctrl-C on 'scanflow up')"
            )
        process.stop()
