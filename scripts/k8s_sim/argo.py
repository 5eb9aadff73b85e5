"""Argo Workflows' workflow-controller against a running k8s-sim cluster.

``up`` applies Argo's CRDs (server-side), waits until they are Established, creates the
controller's config map and starts the controller out of cluster with the admin kubeconfig.
The controller always serves its health endpoint on :6060 of every interface, so only one
can run per machine: ``up`` takes a machine-wide lock on ``LOCK_PATH`` and hands the locked
descriptor to the controller, which holds it for as long as it runs (also if it crashes or is
killed, the lock goes with it). A second ``up`` anywhere on the machine waits for that lock.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from . import build, cluster, procs
from .api import Api, probe
from .config import ARGO_BINARY, SimError, Versions, cache_dir, state_dir
from .pki import Pki

log = logging.getLogger(__name__)

LOCK_PATH = Path("/tmp/scanflow-k8s-sim-argo-controller.lock")
HEALTH_PORT = 6060  # fixed in the controller, on all interfaces
HEALTH_URL = f"http://127.0.0.1:{HEALTH_PORT}/healthz"
DEFAULT_NAMESPACE = "argo"
EXECUTOR_IMAGE = "quay.io/argoproj/argoexec"
CONFIG_MAP = "workflow-controller-configmap"
FIELD_MANAGER = "k8s-sim"
CONTROLLER_ENV = {"LEADER_ELECTION_DISABLE": "true", "DEFAULT_REQUEUE_TIME": "1s"}
_NAMESPACE_RE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


@dataclass
class Controller:
    """The controller's record, ``argo.json`` in the cluster's state directory."""

    path: Path
    data: dict

    @property
    def record(self) -> procs.ProcRecord:
        """The controller process."""
        return procs.ProcRecord(**self.data["process"])

    @property
    def namespace(self) -> str:
        """The controller's own namespace (its config map lives there)."""
        return self.data["namespace"]

    @property
    def namespaced(self) -> bool:
        """True when it watches only its own namespace, False when it watches all."""
        return self.data["namespaced"]

    def is_up(self) -> bool:
        """Whether the recorded controller process still runs."""
        return procs.alive(self.record)


def record_path(state: Path | None = None) -> Path:
    """Where the controller of the cluster in ``state`` is recorded."""
    return (state or state_dir()) / "argo.json"


def load(state: Path | None = None) -> Controller | None:
    """The recorded controller of the cluster in ``state``, or None."""
    path = record_path(state)
    try:
        return Controller(path, json.loads(path.read_text()))
    except (OSError, ValueError):
        return None


def holder() -> dict:
    """Who holds the machine-wide controller lock, as written by the ``up`` that took it."""
    try:
        return json.loads(LOCK_PATH.read_text() or "{}")
    except (OSError, ValueError):
        return {}


def _describe(info: dict) -> str:
    if not info.get("pid"):
        return "an unknown process"
    return (
        f"{info.get('name', 'process')} pid {info['pid']} (cluster state {info.get('state')}, "
        f"since {info.get('since')})"
    )


def _acquire_lock(timeout: float) -> int:
    """Open and lock ``LOCK_PATH``; return the descriptor. Waits up to ``timeout`` seconds."""
    try:
        from filelock import lock_descriptor
    except ImportError as err:
        raise SimError(
            "`argo up` needs the Python package filelock (>= 3.30): run k8s-sim with the "
            "project's virtualenv (make venv) or pip install filelock"
        ) from err

    fd = os.open(LOCK_PATH, os.O_RDWR | os.O_CREAT, 0o666)
    deadline = time.monotonic() + timeout
    announced = False
    while not lock_descriptor(fd, blocking=False):
        if time.monotonic() > deadline:
            os.close(fd)
            raise SimError(
                f"timed out after {timeout:.0f} s waiting for the Argo controller lock "
                f"{LOCK_PATH}: it is held by {_describe(holder())}. Only one workflow-controller "
                "can run per machine (it always listens on :6060); stop that one first "
                "(scripts/k8s-sim argo down with its K8S_SIM_STATE) or wait longer (--lock-timeout)"
            )
        if not announced:
            log.warning(
                "another Argo workflow-controller runs on this machine: %s; waiting up to "
                "%.0f s for it to stop (lock %s)",
                _describe(holder()),
                timeout,
                LOCK_PATH,
            )
            announced = True
        time.sleep(0.5)
    return fd


def _write_holder(fd: int, name: str, pid: int, state: Path) -> None:
    """Say in the lock file who holds it, for whoever waits for it."""
    since = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    info = {"name": name, "pid": pid, "state": str(state), "since": since}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode(), 0)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Go's listeners do
        try:
            s.bind(("0.0.0.0", port))
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def crd_names(files: list[Path]) -> list[str]:
    """CRD names from the file names Argo uses: ``argoproj.io_workflows.yaml`` ->
    ``workflows.argoproj.io``."""
    return [f"{f.stem.split('_', 1)[1]}.{f.stem.split('_', 1)[0]}" for f in files]


def _established(api: Api, name: str) -> bool:
    # Each CRD is 0.03-3 MB; a busy API server may take seconds to send the largest.
    try:
        status, body = api.request(
            "GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}", timeout=30
        )
    except OSError as err:
        log.info("reading CRD %s: %s; retrying", name, err)
        return False
    if status != 200 or not isinstance(body, dict):
        return False
    conds = body.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conds)


def _kubectl(c: cluster.Cluster, args: list[str], input: str | None = None) -> None:
    kubectl = build.binary(Path(c.data["cache"]), "kubectl")
    try:
        proc = subprocess.run(
            [str(kubectl), f"--kubeconfig={c.kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=300,
        )
    except subprocess.TimeoutExpired as err:
        raise SimError(f"kubectl {' '.join(args)} did not finish in {err.timeout:.0f} s") from err
    if proc.returncode != 0:
        raise SimError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")


def _config_map(namespace: str) -> str:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": CONFIG_MAP, "namespace": namespace},
            # Metrics off: the controller would otherwise open :9090 as well.
            "data": {"metricsConfig": "enabled: false\n"},
        }
    )


def _until(what: str, cond, rec: procs.ProcRecord | None, deadline: float) -> None:
    while not cond():
        if rec is not None and not procs.alive(rec):
            raise SimError(
                f"the workflow-controller exited while waiting for {what}; its log {rec.log} "
                f"ends with:\n{cluster._tail(rec.log)}"
            )
        if time.monotonic() > deadline:
            raise SimError(f"timed out waiting for {what}")
        time.sleep(0.2)
    log.info("%s: ok", what)


def up(
    v: Versions,
    namespace: str = DEFAULT_NAMESPACE,
    namespaced: bool = False,
    timeout: float = 180.0,
    lock_timeout: float = 600.0,
) -> tuple[Controller, bool]:
    """Start the controller for the running cluster (building it if missing); return its
    record and whether it was started (False: it already ran for this cluster)."""
    if not _NAMESPACE_RE.fullmatch(namespace):
        raise SimError(
            f"--namespace {namespace!r} is not a valid namespace name (lowercase letters, "
            "digits and '-', starting and ending with a letter or digit, at most 63)"
        )
    state = state_dir()
    old = load(state)
    if old and old.is_up():
        if (old.namespace, old.namespaced) != (namespace, namespaced):
            raise SimError(
                f"a workflow-controller already runs for this cluster in namespace "
                f"{old.namespace} ({'namespaced' if old.namespaced else 'all namespaces'}); "
                "run `scripts/k8s-sim argo down` first to change its namespace or mode"
            )
        return old, False
    c = cluster.load(state)
    if c is None or not c.is_up():
        raise SimError(f"the cluster is not up (state {state}); run: scripts/k8s-sim up")
    build.build(v, components=("argo",))
    t0 = time.monotonic()
    fd = _acquire_lock(lock_timeout)
    rec = None
    try:
        waited = round(time.monotonic() - t0, 2)
        if not _port_free(HEALTH_PORT):
            raise SimError(
                f"port {HEALTH_PORT} is in use by a process that does not hold {LOCK_PATH} "
                "(an Argo controller started by hand?); stop it and retry"
            )
        _write_holder(fd, "k8s-sim argo up", os.getpid(), state)
        t1 = time.monotonic()
        deadline = t1 + timeout
        keys = Pki(state / "pki")
        api = Api(c.data["server"], keys.crt("ca"), keys.admin_token)
        crds = build.argo_crds(cache_dir(v))
        args = ["apply", "--server-side", "--force-conflicts", f"--field-manager={FIELD_MANAGER}"]
        _kubectl(c, [*args, *[f"--filename={f}" for f in crds]])
        for name in crd_names(crds):
            _until(f"CRD {name} Established", lambda n=name: _established(api, n), None, deadline)
        crds_seconds = round(time.monotonic() - t1, 2)
        status, body = api.request("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
        if status not in (201, 409):
            raise SimError(f"creating namespace {namespace} failed: HTTP {status}: {body}")
        _kubectl(c, [*args, "--filename=-"], input=_config_map(namespace))
        env = {k: val for k, val in os.environ.items() if k != "KUBECONFIG"}
        env.update(CONTROLLER_ENV)
        argv = [
            str(build.binary(cache_dir(v), ARGO_BINARY)),
            f"--kubeconfig={c.kubeconfig}",
            f"--namespace={namespace}",
            f"--executor-image={EXECUTOR_IMAGE}:{v.argo}",
            *(["--namespaced"] if namespaced else []),
        ]
        logfile = state / "logs" / f"{ARGO_BINARY}.log"
        t2 = time.monotonic()
        rec = procs.start(ARGO_BINARY, argv, logfile, env, pass_fds=(fd,))
        ctl = Controller(
            record_path(state),
            {
                "version": v.argo,
                "namespace": namespace,
                "namespaced": namespaced,
                "process": rec.to_dict(),
                "lock": str(LOCK_PATH),
            },
        )
        _save(ctl)
        _write_holder(fd, ARGO_BINARY, rec.pid, state)
        _until(f"{HEALTH_URL} ok", lambda: probe(HEALTH_URL), rec, deadline)
        ctl.data.update(
            lock_wait_seconds=waited,
            crds_seconds=crds_seconds,
            start_seconds=round(time.monotonic() - t2, 2),
            ready_seconds=round(time.monotonic() - t1, 2),
        )
        _save(ctl)
        log.info("workflow-controller up in %.1f s (pid %d)", time.monotonic() - t1, rec.pid)
        return ctl, True
    except BaseException:
        if rec is not None:
            procs.stop([rec])
        record_path(state).unlink(missing_ok=True)
        raise
    finally:
        os.close(fd)  # the controller keeps its own copy of the locked descriptor


def _save(ctl: Controller) -> None:
    tmp = ctl.path.with_suffix(".tmp")
    tmp.write_text(json.dumps(ctl.data, indent=2) + "\n")
    tmp.replace(ctl.path)


def down(state: Path | None = None) -> list[str]:
    """Stop the recorded controller of the cluster in ``state``; its lock goes with it.
    Returns the names of what was still running."""
    ctl = load(state)
    if ctl is None:
        return []
    stopped = procs.stop([ctl.record])
    if ctl.is_up():
        raise SimError(f"could not stop the workflow-controller (pid {ctl.record.pid})")
    ctl.path.unlink(missing_ok=True)
    return stopped
