"""``scanflow tracker up|down|status``: the MLflow server, PostgreSQL and S3 of one app.

Everything listens on 127.0.0.1. Ports, PIDs and credentials live in
``<app>/.scanflow/tracker``; data survives ``down`` then ``up``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock

from scanflow.errors import TrackingError
from scanflow.spec.loader import Project
from scanflow.spec.model import Tracker
from scanflow.tracking.stack import mlflow_server, postgres, seaweedfs
from scanflow.tracking.stack.credentials import Credentials, load_or_create
from scanflow.tracking.stack.ports import HOST, free_ports, port_free
from scanflow.tracking.stack.postgres import PostgresCluster, find_bin_dir, server_user
from scanflow.tracking.stack.processes import ProcessRecord, resident_memory
from scanflow.tracking.stack.seaweedfs import (
    SeaweedStore,
    WeedPorts,
    ensure_bucket,
    s3_endpoint,
    weed_binary,
)
from scanflow.tracking.stack.state import StackPaths, StackState

log = logging.getLogger(__name__)

STOP_ORDER = ("mlflow", "seaweedfs", "postgres")
ENV_S3_KEY, ENV_S3_SECRET = "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"


@dataclass
class StackStatus:
    """What runs now: one entry per component, the URI and the stack's resident memory."""

    uri: str | None
    components: dict[str, ProcessRecord | None]
    running: dict[str, bool]
    ports: dict[str, int]
    memory: dict[str, int] = field(default_factory=dict)
    s3_endpoint: str | None = None
    bucket: str | None = None
    start_seconds: float | None = None
    credentials_file: str | None = None

    @property
    def up(self) -> bool:
        """True when every component of the stack runs."""
        return bool(self.running) and all(self.running.values())

    @property
    def down(self) -> bool:
        """True when no component runs."""
        return not any(self.running.values())


@dataclass
class UpResult:
    """What ``up`` did: the stack's status, which components it started, how long it took."""

    status: StackStatus
    started: list[str]
    already_up: bool
    seconds: float


class TrackerStack:
    """The tracker stack of one application folder."""

    def __init__(self, project: Project) -> None:
        tracker = project.app.tracker
        if tracker is not None and tracker.uri:
            raise TrackingError(
                f"application {project.app.name!r} tracks to {tracker.uri} (tracker.uri in "
                f"{project.spec_path or 'scanflow.yaml'}); a local stack is for "
                "'tracker: {managed: true}': change the spec to use one"
            )
        self.project = project
        self.tracker = tracker or Tracker(managed=True)
        self.paths = StackPaths.for_state_dir(project.state_dir)

    # -- public API --------------------------------------------------------------------
    @property
    def components(self) -> tuple[str, ...]:
        """The processes this stack runs (no SeaweedFS with an external S3 endpoint)."""
        if self.tracker.s3_endpoint:
            return ("postgres", "mlflow")
        return ("postgres", "seaweedfs", "mlflow")

    def status(self) -> StackStatus:
        """Which components run, their PIDs and ports, and their resident memory."""
        state = StackState.load(self.paths.state)
        records = {name: state.processes.get(name) for name in self.components}
        running = {name: bool(r and r.alive()) for name, r in records.items()}
        alive = [r for n, r in records.items() if r is not None and running[n]]
        return StackStatus(
            uri=state.uri,
            components=records,
            running=running,
            ports=dict(state.ports),
            memory=resident_memory(alive),
            s3_endpoint=state.s3_endpoint,
            bucket=state.bucket,
            start_seconds=state.start_seconds,
            credentials_file=str(self.paths.credentials)
            if self.paths.credentials.exists()
            else None,
        )

    def up(self, port: int | None = None, timeout: float = 180.0) -> UpResult:
        """Start what is not running yet and wait until the server answers."""
        began = time.monotonic()
        self.paths.root.mkdir(parents=True, exist_ok=True)
        with self._locked():
            state = StackState.load(self.paths.state)
            running = {
                n: r for n, r in state.processes.items() if n in self.components and r.alive()
            }
            if set(running) == set(self.components):
                if port is not None and port != state.ports.get("mlflow"):
                    raise TrackingError(
                        f"the tracker stack already runs at {state.uri}; stop it with "
                        f"'scanflow tracker down' before moving it to port {port}"
                    )
                return UpResult(self.status(), [], True, time.monotonic() - began)
            started = self._start(state, running, port, timeout)
            state.start_seconds = round(time.monotonic() - began, 3)
            state.save(self.paths.state)
        log.info("tracker stack up at %s in %.1fs", state.uri, state.start_seconds)
        return UpResult(self.status(), started, False, time.monotonic() - began)

    def down(self) -> list[ProcessRecord]:
        """Stop every process the stack started (by PID); returns those that were running."""
        with self._locked():
            state = StackState.load(self.paths.state)
            stopped = self._stop_all(state)
            state.processes = {}
            if state.ports or self.paths.state.exists():
                state.save(self.paths.state)
        return stopped

    def stop_component(self, name: str) -> bool:
        """Stop one component (e.g. to take the S3 store down); ``up`` restarts it."""
        with self._locked():
            state = StackState.load(self.paths.state)
            record = state.processes.pop(name, None)
            stopped = record is not None and self._stop(name, record, state)
            state.save(self.paths.state)
        return stopped

    def credentials(self) -> Credentials:
        """This installation's secrets (created on first ``up``)."""
        return load_or_create(self.paths.credentials)

    def postgres(self) -> PostgresCluster:
        """The stack's PostgreSQL cluster."""
        return PostgresCluster(
            self.paths.postgres_data, self.paths.log("postgres"), self.credentials()
        )

    # -- starting ----------------------------------------------------------------------
    def _start(
        self, state: StackState, running: dict[str, ProcessRecord], port: int | None, timeout: float
    ) -> list[str]:
        if "postgres" not in running:
            find_bin_dir()  # fail before starting anything when PostgreSQL is missing
            server_user()
        if "seaweedfs" in self.components and "seaweedfs" not in running:
            weed_binary()
        creds = self.credentials()
        previous_s3 = state.ports.get("s3")
        self._choose_ports(state, running, port)
        if "mlflow" in running and (
            "postgres" not in running or state.ports.get("s3") != previous_s3
        ):
            # its database or S3 endpoint is coming back elsewhere: restart it too
            mlflow_server.stop_server(running.pop("mlflow"))
        cluster = PostgresCluster(self.paths.postgres_data, self.paths.log("postgres"), creds)
        weed = SeaweedStore(self.paths.seaweedfs_data, self.paths.log("seaweedfs"), creds)
        s3 = self._s3_target(state, creds)
        started: dict[str, ProcessRecord] = {}
        try:
            # MLflow's imports take longest: it starts first and waits for its database itself
            if "seaweedfs" in self.components and "seaweedfs" not in running:
                started["seaweedfs"] = weed.start(self._weed_ports(state))
            if "mlflow" not in running:
                mlflow_server.write_pgpass(self.paths.pgpass, creds.postgres_password)
                started["mlflow"] = mlflow_server.start(
                    state.ports["mlflow"],
                    state.ports["postgres"],
                    self.paths.pgpass,
                    s3,
                    self.tracker.workers,
                    self.paths.log("mlflow"),
                    db_timeout=timeout,
                )
            if "postgres" not in running:
                if not cluster.initialized:
                    cluster.init()
                started["postgres"] = cluster.start(state.ports["postgres"])
                cluster.wait_ready(started["postgres"], state.ports["postgres"], timeout)
            cluster.ensure_database(state.ports["postgres"])
            if "seaweedfs" in started:
                weed.wait_ready(started["seaweedfs"], self._weed_ports(state), s3.bucket, timeout)
            elif "seaweedfs" not in self.components:
                ensure_bucket(s3.endpoint, s3.bucket, s3.access_key, s3.secret_key)
            if "mlflow" in started:
                mlflow_server.wait_ready(started["mlflow"], state.ports["mlflow"], timeout)
        except BaseException:
            for name in reversed(list(started)):
                self._stop(name, started[name], state)
            state.processes = running
            state.save(self.paths.state)
            raise
        state.processes = {**running, **started}
        state.uri = f"http://{HOST}:{state.ports['mlflow']}"
        state.s3_endpoint, state.bucket = s3.endpoint, s3.bucket
        return list(started)

    def _choose_ports(
        self, state: StackState, running: dict[str, ProcessRecord], requested: int | None
    ) -> None:
        ports = state.ports
        if "mlflow" not in running:
            wanted = requested or self.tracker.port
            if wanted is not None:
                if not port_free(wanted):
                    raise TrackingError(
                        f"port {wanted} on {HOST} is already taken by another program; pick "
                        "another with 'scanflow tracker up --port N' (or tracker.port in "
                        "scanflow.yaml), or leave the port out to get a free one"
                    )
                ports["mlflow"] = wanted
            elif not ports.get("mlflow") or not port_free(ports["mlflow"]):
                ports["mlflow"] = self._new_ports(1, ports)[0]
        if "postgres" not in running and (
            not ports.get("postgres") or not port_free(ports["postgres"])
        ):
            ports["postgres"] = self._new_ports(1, ports)[0]
        if "seaweedfs" in self.components and "seaweedfs" not in running:
            names = ("master", "volume", "filer", "s3")
            previous = [ports.get(n) for n in names]
            reusable = all(p and port_free(p) and port_free(p + 10000) for p in previous)
            if not reusable:
                ports.update(zip(names, self._new_ports(len(names), ports), strict=True))

    def _new_ports(self, count: int, taken: dict[str, int]) -> list[int]:
        avoid = set(taken.values()) | {p + 10000 for p in taken.values()}
        while True:
            ports = free_ports(count, avoid)
            if all(port_free(p + 10000) for p in ports):
                return ports
            avoid |= set(ports)

    def _weed_ports(self, state: StackState) -> WeedPorts:
        p = state.ports
        return WeedPorts(master=p["master"], volume=p["volume"], filer=p["filer"], s3=p["s3"])

    def _s3_target(self, state: StackState, creds: Credentials) -> mlflow_server.S3Target:
        bucket = self.tracker.s3_bucket
        if "seaweedfs" in self.components:
            return mlflow_server.S3Target(
                s3_endpoint(self._weed_ports(state)),
                bucket,
                creds.s3_access_key,
                creds.s3_secret_key,
            )
        key, secret = os.environ.get(ENV_S3_KEY), os.environ.get(ENV_S3_SECRET)
        if not key or not secret:
            raise TrackingError(
                f"tracker.s3_endpoint is {self.tracker.s3_endpoint}, but {ENV_S3_KEY} and "
                f"{ENV_S3_SECRET} are not both set; export the keys of that S3 store "
                "before 'scanflow tracker up' (they are never written to scanflow.yaml)"
            )
        return mlflow_server.S3Target(self.tracker.s3_endpoint or "", bucket, key, secret)

    # -- stopping ----------------------------------------------------------------------
    def _stop_all(self, state: StackState) -> list[ProcessRecord]:
        """MLflow and SeaweedFS side by side, then PostgreSQL (MLflow's database) last."""
        from concurrent.futures import ThreadPoolExecutor

        records = {n: r for n in STOP_ORDER if (r := state.processes.get(n)) is not None}
        first = [n for n in records if n != "postgres"]
        with ThreadPoolExecutor(max_workers=2) as pool:
            done = dict(
                zip(first, pool.map(lambda n: self._stop(n, records[n], state), first), strict=True)
            )
        if "postgres" in records:
            done["postgres"] = self._stop("postgres", records["postgres"], state)
        return [records[n] for n in STOP_ORDER if done.get(n)]

    def _stop(self, name: str, record: ProcessRecord, state: StackState) -> bool:
        if name == "postgres":
            return postgres.stop_server(record)
        if name == "seaweedfs":
            ports = self._weed_ports(state) if "s3" in state.ports else None
            return seaweedfs.stop_server(record, ports)
        return mlflow_server.stop_server(record)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.paths.root.mkdir(parents=True, exist_ok=True)
        with FileLock(self.paths.lock):
            yield


def stack_for(base_dir: str | Path) -> TrackerStack:
    """The stack of the application folder ``base_dir``."""
    from scanflow.spec.loader import load_project

    return TrackerStack(load_project(base_dir, check_files=False))
