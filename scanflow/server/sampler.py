"""Samples every declared service's status and counters at a fixed interval, in a thread
of the control server, and keeps the last hour in memory (lost when the server stops)."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque

from scanflow.api.errors import NotFound
from scanflow.api.service_history import Sample, points, served_versions
from scanflow.api.views import ServiceHistory
from scanflow.api.workspace import AppHandle, Workspace
from scanflow.errors import ScanflowError

log = logging.getLogger(__name__)

INTERVAL = 5.0
KEEP = 720  # one hour of samples at the default interval


class ServiceSampler:
    """Reads each service of ``workspace`` every ``interval`` seconds."""

    def __init__(self, workspace: Workspace, interval: float = INTERVAL, keep: int = KEEP) -> None:
        self.workspace = workspace
        self.interval = interval
        self.since: float | None = None
        self._samples: dict[tuple[str, str], deque[Sample]] = {
            (h.name, s.name): deque(maxlen=keep)
            for h in workspace.apps.values()
            for s in h.project.app.services
        }
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="scanflow-sampler", daemon=True)

    def start(self) -> None:
        if self._samples:
            self.since = time.time()
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample_once()
            self._stop.wait(self.interval)

    def sample_once(self) -> None:
        """Read every service once (a service that does not answer is recorded as down)."""
        for (app, name), samples in self._samples.items():
            samples.append(self._read(self.workspace.apps[app], name))

    @staticmethod
    def _read(handle: AppHandle, name: str) -> Sample:
        at = time.time()
        control = None
        try:
            control = handle.engine().services().control(name)
            status = control.status()
            counters = control.metrics() if status.get("reachable", True) else {}
        except (ScanflowError, OSError) as exc:
            log.debug("service %s/%s not sampled: %s", handle.name, name, exc)
            return Sample(at, {"ready": False, "error": str(exc)})
        finally:
            getattr(control, "close", lambda: None)()
        return Sample(at, status, counters)

    def history(self, handle: AppHandle, name: str) -> ServiceHistory:
        """What ``name`` of ``handle`` did since the server started sampling it."""
        samples = self._samples.get((handle.name, name))
        if samples is None:
            raise NotFound(f"no service {name!r} in application {handle.name!r}")
        return ServiceHistory(
            app=handle.name,
            name=name,
            interval=self.interval,
            since=self.since,
            points=points(list(samples)),
            versions=served_versions(handle.project.state_dir, name),
        )
