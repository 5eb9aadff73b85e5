"""The pod player: a stand-in for the kubelet, for the pods that ask for it.

KWOK's nodes run nothing: they mark pods Running and complete them at once. A pod annotated
``k8s-sim.scanflow.io/outcome: play`` is left Running by k8s-sim's stages (as any value but
``fail``); the player then runs the command of its main container (``main`` in an Argo pod,
else the first container) as a process on this host, and when it exits writes the pod's
status as a kubelet would: every container terminated, the main one with the process's exit
code, phase ``Succeeded`` (exit code 0) or ``Failed``. A pod deleted while its process runs
(a cancelled or pruned run) gets its process group stopped: SIGTERM, SIGKILL after the grace.

What is faked, and only that:

- the image: the command runs with this host's files. ``python``/``python3`` is the player's
  own interpreter; an environment value ``/app`` (or ``/app/...``, the application's folder
  in a Scanflow step image) becomes the pod's annotation ``k8s-sim.scanflow.io/app-dir`` (or
  ``--app-dir``) when one is given;
- the environment: the container's literal ``env`` values over the host's ``PATH``,
  ``HOME``, locale and temporary directory (``valueFrom`` entries are skipped);
- Argo's ``emissary`` wrapper (``argoexec emissary ... -- CMD``) is dropped: CMD runs;
- logs go to ``DIR/<namespace>_<pod>.log`` (``--log-dir``), not to ``kubectl logs``.
"""

from __future__ import annotations

import datetime
import logging
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("k8s-sim.player")

OUTCOME = "k8s-sim.scanflow.io/outcome"
PLAY = "play"
APP_DIR_ANNOTATION = "k8s-sim.scanflow.io/app-dir"
IMAGE_APP_DIR = "/app"
HOST_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
KILL_GRACE = 10.0  # seconds between SIGTERM and SIGKILL, at most


@dataclass
class Played:
    """One pod's process."""

    namespace: str
    name: str
    process: subprocess.Popen
    grace: float
    started: str
    stopped: bool = False  # the pod was deleted: its status is not written


@dataclass
class Player:
    """Plays the opted-in pods of ``namespace`` (all when None) through ``api`` (a
    ``kubernetes.client.ApiClient``)."""

    api: Any
    namespace: str | None = None
    app_dir: Path | None = None
    log_dir: Path = Path(".")
    python: str = sys.executable
    playing: dict[str, Played] = field(default_factory=dict)  # by pod uid
    done: set[str] = field(default_factory=set)  # uids whose process was started already
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, stop: threading.Event) -> None:
        """Watch pods and play them until ``stop`` is set; then stop what still runs."""
        try:
            while not stop.is_set():
                try:
                    self._watch(stop)
                except Exception as exc:  # noqa: BLE001 - a dropped watch is listed again
                    log.warning("watching pods failed (%s); listing them again", exc)
                    stop.wait(1.0)
        finally:
            self._gone(set(self.playing))

    def _watch(self, stop: threading.Event) -> None:
        """List the pods, then follow their changes for a second (a list also catches what
        a watch missed)."""
        from kubernetes import client, watch

        core = client.CoreV1Api(self.api)
        lister = core.list_namespaced_pod if self.namespace else core.list_pod_for_all_namespaces
        args = (self.namespace,) if self.namespace else ()
        pods = lister(*args)
        for pod in pods.items:
            self.see(pod)
        self._gone(set(self.playing) - {p.metadata.uid for p in pods.items})
        version = pods.metadata.resource_version
        for event in watch.Watch().stream(
            lister, *args, resource_version=version, timeout_seconds=1
        ):
            pod = event["object"]
            if event["type"] == "DELETED":
                self._gone({pod.metadata.uid})
            else:
                self.see(pod)
            if stop.is_set():
                return

    def see(self, pod: Any) -> None:
        """Start the pod's process when it is Running and opted in; stop it when the pod is
        being deleted."""
        meta = pod.metadata
        if (meta.annotations or {}).get(OUTCOME) != PLAY:
            return
        if meta.deletion_timestamp is not None:
            self._gone({meta.uid})
        elif pod.status.phase == "Running" and meta.uid not in self.done:
            self.done.add(meta.uid)
            self._start(pod)

    def _start(self, pod: Any) -> None:
        meta = pod.metadata
        container = _main_container(pod)
        argv = _command(container, self.python)
        app_dir = (meta.annotations or {}).get(APP_DIR_ANNOTATION) or self.app_dir
        env = _environment(container, app_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        try:
            with open(self.log_dir / f"{meta.namespace}_{meta.name}.log", "ab") as out:
                process = subprocess.Popen(
                    argv,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    cwd=self.log_dir,
                    start_new_session=True,
                )
        except OSError as exc:  # no such program: the container cannot start
            log.warning("pod %s/%s: cannot run %s: %s", meta.namespace, meta.name, argv, exc)
            self._finish(pod, 127, _now(), "StartError")
            return
        grace = min(float(pod.spec.termination_grace_period_seconds or KILL_GRACE), KILL_GRACE)
        played = Played(meta.namespace, meta.name, process, grace, _now())
        with self.lock:
            self.playing[meta.uid] = played
        log.info("pod %s/%s: pid %d runs %s", meta.namespace, meta.name, process.pid, argv)
        threading.Thread(target=self._wait, args=(meta.uid, pod), daemon=True).start()

    def _wait(self, uid: str, pod: Any) -> None:
        with self.lock:
            played = self.playing[uid]
        code = played.process.wait()
        with self.lock:
            self.playing.pop(uid, None)
            if played.stopped:
                return
        log.info(
            "pod %s/%s: pid %d exited %d", played.namespace, played.name, played.process.pid, code
        )
        self._finish(pod, code, played.started, "Completed" if code == 0 else "Error")

    def _finish(self, pod: Any, code: int, started: str, reason: str) -> None:
        """Write the pod's terminal status, as the kubelet does when its containers end."""
        meta = pod.metadata
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        main = _main_container(pod).name
        statuses = []
        for c in pod.spec.containers:
            own = c.name == main
            statuses.append(
                {
                    "name": c.name,
                    "image": c.image,
                    "ready": False,
                    "restartCount": 0,
                    "started": False,
                    "state": {
                        "terminated": {
                            "exitCode": code if own else 0,
                            "reason": reason if own else "Completed",
                            "startedAt": started,
                            "finishedAt": _now(),
                        }
                    },
                }
            )
        body = {
            "status": {
                "phase": "Succeeded" if code == 0 else "Failed",
                "containerStatuses": statuses,
            }
        }
        try:
            client.CoreV1Api(self.api).patch_namespaced_pod_status(meta.name, meta.namespace, body)
        except ApiException as exc:
            if exc.status != 404:  # a pod deleted meanwhile has no status to write
                raise

    def _gone(self, uids: set[str]) -> None:
        """Stop the process groups of pods that are deleted or being deleted."""
        with self.lock:
            stopping = [self.playing[u] for u in uids if u in self.playing]
            for played in stopping:
                played.stopped = True
        for played in stopping:
            log.info(
                "pod %s/%s deleted: stopping pid %d",
                played.namespace,
                played.name,
                played.process.pid,
            )
            stop_group(played.process, played.grace)


def stop_group(process: subprocess.Popen, grace: float) -> None:
    """SIGTERM the process group of ``process`` (a session leader), SIGKILL it after
    ``grace`` seconds."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # what is left of the group
    except ProcessLookupError:
        pass
    process.wait()


def _main_container(pod: Any) -> Any:
    containers = pod.spec.containers
    return next((c for c in containers if c.name == "main"), containers[0])


def _command(container: Any, python: str) -> list[str]:
    argv = [*(container.command or []), *(container.args or [])]
    if argv and argv[0].endswith("argoexec") and "--" in argv:  # Argo's emissary wrapper
        argv = argv[argv.index("--") + 1 :]
    if argv and argv[0] in ("python", "python3"):
        argv[0] = python
    return argv


def _environment(container: Any, app_dir: str | Path | None) -> dict[str, str]:
    env = {k: os.environ[k] for k in HOST_ENV if k in os.environ}
    for item in container.env or []:
        if item.value_from is not None:
            continue
        value = item.value or ""
        if app_dir and (value == IMAGE_APP_DIR or value.startswith(IMAGE_APP_DIR + "/")):
            value = str(app_dir) + value[len(IMAGE_APP_DIR) :]
        env[item.name] = value
    return env


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def play(kubeconfig: Path, namespace: str | None, app_dir: Path | None, log_dir: Path) -> None:
    """Run the player until SIGTERM or SIGINT (the ``play`` command)."""
    from kubernetes import config

    stop = threading.Event()

    def ask_stop(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, ask_stop)
    signal.signal(signal.SIGINT, ask_stop)
    api = config.new_client_from_config(config_file=str(kubeconfig))
    log.info(
        "playing pods annotated %s=%s in %s; logs in %s",
        OUTCOME,
        PLAY,
        f"namespace {namespace}" if namespace else "all namespaces",
        log_dir,
    )
    Player(api, namespace, app_dir, log_dir).run(stop)
