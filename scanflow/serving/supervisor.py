"""The supervisor: one process that owns the port, the workers and the model version.

- **Workers.** The supervisor binds the listening socket and starts worker processes
  (:mod:`scanflow.serving.worker`) that all accept on it. :meth:`Supervisor.scale` grows
  or shrinks the pool live: a new worker accepts only once its model is loaded; a retiring
  worker stops accepting and finishes every request it holds (see
  :mod:`scanflow.serving.http`), so no request is dropped. Crashed workers are replaced.
- **Hot-swap.** For ``models:/name@alias`` the supervisor polls where the alias points
  (:mod:`scanflow.serving.watch`). A new version goes through phases, each logged with its
  duration and shown in ``/admin/status``: *downloading* (a resolver subprocess, or a plain
  copy when the store's folder is on this machine), *loading* and *smoke test* in every
  worker, *confirming* that the alias still points at it, then *switched*: one write to
  the shared generation (:mod:`scanflow.serving.slots`) switches traffic at once. A version
  that fails anywhere is dropped, the old one keeps serving, and the reason is logged,
  counted in ``/metrics`` and listed in ``failed_versions`` of ``/admin/status``.
- **Never blocking.** The loop waits on nothing but its selector: resolutions run in a
  subprocess whose answer the loop reads when it comes (the backup model's too).

The supervisor itself never imports numpy, scikit-learn or MLflow: it stays small.
"""

from __future__ import annotations

import json
import logging
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scanflow.auth import TOKEN_ENV, app_token, token_path
from scanflow.errors import ScanflowError
from scanflow.serving import metrics as metrics_mod
from scanflow.serving.control import SupervisorEnd
from scanflow.serving.errors import ModelLoadError, ServingError
from scanflow.serving.options import ServeOptions, start_workers
from scanflow.serving.resolve import parse_uri, read_mlmodel
from scanflow.serving.slots import SharedGeneration

logger = logging.getLogger("scanflow.serving.supervisor")

TICK = 0.25
RETRY_FAILED_AFTER = 60.0
RESOLVE_TIMEOUT = 600.0


@dataclass
class Worker:
    """A forked worker as the supervisor sees it."""

    proc: subprocess.Popen
    channel: SupervisorEnd
    started: float
    ready: bool = False
    draining: bool = False

    @property
    def pid(self) -> int:
        return self.proc.pid


@dataclass
class Staging:
    """A version on its way in: downloading, loading (and smoke test) in every worker,
    confirming that the alias still points at it, then switched."""

    version: str | None  # None until resolved when the alias could not be read
    uri: str
    backup: bool = False
    phase: str = "downloading"
    seen: float = field(default_factory=time.monotonic)
    since: float = field(default_factory=time.time)
    phase_at: float = field(default_factory=time.monotonic)
    loading_at: float = 0.0
    took: dict[str, float] = field(default_factory=dict)  # seconds spent in each phase
    gen: int = 0  # set once the workers are asked to load it
    path: str = ""
    waiting: set[int] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)

    def enter(self, phase: str) -> float:
        """Move to ``phase``; returns the seconds spent in the previous one."""
        now = time.monotonic()
        spent = now - self.phase_at
        self.took[self.phase] = self.took.get(self.phase, 0.0) + spent
        self.phase, self.phase_at = phase, now
        if phase == "loading":
            self.loading_at = now
        return spent

    def describe(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "phase": self.phase,
            "since": self.since,
            "backup": self.backup,
            "waiting": len(self.waiting),
        }


@dataclass
class _Job:
    """The resolver subprocess at work, and what to call with its answer."""

    proc: subprocess.Popen
    deadline: float
    on_done: Callable[[dict[str, Any] | None, str | None], None]
    stderr: Path
    out: bytes = b""

    def stderr_tail(self) -> str:
        try:
            return self.stderr.read_text(errors="replace")[-4000:]
        except OSError:
            return ""


@dataclass
class _Deferred:
    """An admin call answered once the pool matches its target (``wait: true``)."""

    worker_pid: int
    ident: int
    deadline: float


class Supervisor:
    """Runs one service: ``Supervisor(options).run()`` blocks until SIGTERM/SIGINT."""

    def __init__(self, options: ServeOptions) -> None:
        self.options = options
        self.service = options.service
        self.ref = parse_uri(self.service.model)
        self.target, why = start_workers(self.service)
        logger.info("service %s starts %d worker(s) (%s)", self.service.name, self.target, why)
        self.workers: dict[int, Worker] = {}
        self.generation = SharedGeneration(options.service_dir / "generation", create=True)
        self.current: dict[str, Any] | None = None  # version, path, gen, since
        self.staging: Staging | None = None
        self.last_error: str | None = None
        self.failed_versions: dict[str, dict[str, Any]] = {}  # version -> error, at
        self._failed_at: dict[str, float] = {}
        self.history: list[dict[str, Any]] = []
        self.stopping = False
        self._deferred: list[_Deferred] = []
        self._job: _Job | None = None
        self._watcher: Any = None
        self._next_poll = 0.0
        self._crashes: list[float] = []
        self._keep_out: list[str] = []
        self._optimize = False  # workers run with PYTHONOPTIMIZE=2 (unless it is set)
        self.on_backup = False  # serving backup_model because the model cannot be loaded
        self._last_gen = 0
        self._signals: list[int] = []
        self._stop_deadline = 0.0
        self.sock: socket.socket | None = None
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        metrics_mod.prepare_dir(options.metrics_dir)
        self.metrics = metrics_mod.get()
        self.token = app_token(options.state_dir) if options.auth else None

    # -- public API (called from the loop: admin RPCs end up here) -------------------
    def scale(self, workers: int) -> dict[str, Any]:
        """Grow or shrink to ``workers`` processes; requests in flight are never dropped."""
        lo, hi = self.service.min_workers, self.service.max_workers
        if not isinstance(workers, int) or isinstance(workers, bool) or not lo <= workers <= hi:
            raise ServingError(
                f"workers={workers!r} is outside this service's bounds "
                f"[min_workers={lo}, max_workers={hi}]; change the bounds in the service spec"
            )
        if workers != self.target:
            logger.info("scaling %s from %d to %d workers", self.service.name, self.target, workers)
        self.target = workers
        self.metrics.workers_target.set(workers)
        self._maintain_pool()
        return self.status()

    def refresh(self) -> dict[str, Any]:
        """Look at the registry now instead of at the next poll."""
        self._next_poll = 0.0
        self.failed_versions.clear()
        self._failed_at.clear()
        self._poll()
        return self.status()

    def status(self) -> dict[str, Any]:
        """Workers, the version taking traffic, a staging in progress and the last error."""
        live = [w for w in self.workers.values() if not w.draining]
        return {
            "service": self.service.name,
            "model_uri": self.service.model,
            "port": self.options.port,
            "ready": self.current is not None,
            "model_version": self.current["version"] if self.current else None,
            "serving_backup": self.on_backup,
            "generation": self.generation.get(),
            "staging": self.staging.describe() if self.staging else None,
            "failed_versions": self.failed_versions,
            "workers": len(live),
            "workers_ready": sum(1 for w in live if w.ready),
            "workers_draining": sum(1 for w in self.workers.values() if w.draining),
            "workers_target": self.target,
            "worker_pids": sorted(w.pid for w in live),
            "min_workers": self.service.min_workers,
            "max_workers": self.service.max_workers,
            "last_error": self.last_error,
            "history": self.history[-20:],
        }

    # -- main loop ------------------------------------------------------------------
    def run(self) -> int:
        """Bind, load, fork, then supervise until asked to stop; returns the exit code."""
        self._bind()
        self._install_signals()
        self._initial_load()
        self.metrics.workers_target.set(self.target)
        self._maintain_pool()
        logger.info(
            "serving %s (%s) on http://%s:%d with %d worker(s); admin calls %s",
            self.service.name,
            self.service.model,
            self.options.host,
            self.options.port,
            self.target,
            self._auth_note(),
        )
        while True:
            timeout = TICK
            for key, _ in self._sel.select(timeout):
                key.data(key.fileobj)
            self._handle_signals()
            self._reap()
            if self.stopping:
                if not self.workers:
                    break
                continue
            self._maintain_pool()
            self._check_job()
            self._check_staging()
            self._answer_deferred()
            if time.monotonic() >= self._next_poll:
                self._poll()  # an alias to follow, or a model still to load
        self._cleanup()
        logger.info("service %s stopped", self.service.name)
        return 0

    def _auth_note(self) -> str:
        """Where the admin token comes from (never the token itself)."""
        if self.token is None:
            return "are OPEN (auth off)"
        if os.environ.get(TOKEN_ENV):
            return f"need the token in ${TOKEN_ENV}"
        return f"need the token in {token_path(self.options.state_dir)}"

    def _bind(self) -> None:
        sock = socket.socket(socket.AF_INET6 if ":" in self.options.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.options.host, self.options.port))
        except OSError as exc:
            sock.close()
            raise ServingError(
                f"cannot listen on {self.options.host}:{self.options.port} for service "
                f"{self.service.name!r}: {exc.strerror}; pick a free port with --port or the "
                "service's 'port'"
            ) from None
        sock.listen(2048)
        sock.set_inheritable(True)
        if self.options.port == 0:
            self.options.port = sock.getsockname()[1]
        self.sock = sock

    def _install_signals(self) -> None:
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        self._sel.register(self._wake_r, selectors.EVENT_READ, self._drain_wakeup)

    def _on_signal(self, signum: int, frame: Any) -> None:
        self._signals.append(signum)  # acted on by the loop, not inside the handler

    def _handle_signals(self) -> None:
        while self._signals:
            signum = self._signals.pop(0)
            if not self.stopping:
                logger.info("received %s: draining workers", signal.Signals(signum).name)
                self.stopping = True
                self._stop_deadline = time.monotonic() + self.options.drain_timeout + 10
                for worker in self.workers.values():
                    self._retire(worker)
            else:  # second signal: do not wait any longer
                self._stop_deadline = 0.0
        if self.stopping and time.monotonic() > self._stop_deadline:
            for worker in self.workers.values():
                _kill(worker.pid, signal.SIGKILL)

    def _drain_wakeup(self, sock: socket.socket) -> None:
        try:
            while sock.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    # -- model versions -------------------------------------------------------------
    # A version comes in through one path whatever asked for it (the alias moved, the
    # first load, a retry, the backup model): _begin -> _resolve -> _downloaded ->
    # workers stage it -> _confirm -> _switch. Every step is driven by the loop.
    def _initial_load(self) -> None:
        """Resolve the model before the first workers start, so they load it right away
        (the loop runs meanwhile for signals; no worker exists yet to ask for status)."""
        self._watcher_setup()
        self._begin(self._alias_version(), first=True)
        while self.staging is not None and not self.staging.backup and not self.stopping:
            for key, _ in self._sel.select(TICK):
                key.data(key.fileobj)
            self._handle_signals()
            self._check_job()
        if self.current is not None:
            self._next_poll = time.monotonic() + self.service.poll_interval

    def _watcher_setup(self) -> None:
        if self.ref.kind != "alias" or self._watcher is not None:
            return
        from scanflow.serving.watch import watcher_for

        tracking = self.options.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or ""
        if tracking:
            self._watcher = watcher_for(tracking, self.ref.name, self.ref.alias or "")

    def _alias_version(self) -> str | None:
        """Where the alias points now (None: not an alias, no cheap watcher, or unreadable)."""
        if self._watcher is None:
            return None
        try:
            return self._watcher.version()
        except Exception as exc:
            logger.warning("cannot read alias %s of %s: %s", self.ref.alias, self.ref.name, exc)
            return None

    def _poll(self) -> None:
        """Is there a version to switch to (or, without a model, to load)?"""
        now = time.monotonic()
        self._next_poll = now + (
            self.service.poll_interval if self._watcher else max(self.service.poll_interval, 30)
        )
        if self._job is not None or self.staging is not None:
            return
        if self.current is None or self.on_backup:  # load the model from scratch
            self._next_poll = now + self._retry_interval()
            version = self._alias_version()
            if not self._failed_recently(version):
                self._begin(version)
            return
        if self.ref.kind != "alias":
            return
        if self._watcher is None:  # no cheap watcher: the resolver looks the alias up
            self._resolve(self.service.model, self._looked_up, download=False)
            return
        self._consider(self._alias_version())

    def _looked_up(self, found: dict[str, Any] | None, error: str | None) -> None:
        if error:
            logger.warning("cannot read alias %s of %s: %s", self.ref.alias, self.ref.name, error)
        elif found and self.staging is None:
            self._consider(str(found["version"]))

    def _consider(self, version: str | None) -> None:
        if self.current is None or version in (None, self.current["version"]):
            return
        if self._failed_recently(version):
            return
        logger.info(
            "alias %s@%s moved to version %s (serving %s): seen",
            self.ref.name,
            self.ref.alias,
            version,
            self.current["version"],
        )
        self._begin(version)

    def _failed_recently(self, version: str | None) -> bool:
        failed_at = self._failed_at.get(version or "")
        return failed_at is not None and time.monotonic() - failed_at < RETRY_FAILED_AFTER

    def _begin(self, version: str | None, *, first: bool = False) -> None:
        """Start bringing in ``version`` (None: whatever the model URI resolves to)."""
        uri = self.service.model
        if version is not None and self.ref.kind == "alias":
            uri = f"models:/{self.ref.name}/{version}"
        self.staging = Staging(version=version, uri=uri)
        location = None
        if version is not None and self._watcher is not None:
            try:
                location = self._watcher.location(version)
            except Exception as exc:
                logger.debug("no artifact location for version %s: %s", version, exc)
        logger.info("version %s: downloading %s", version or "?", uri)
        self._resolve(uri, self._downloaded, location=location)

    def _serve_backup(self, reason: str) -> bool:
        """Bring in ``backup_model`` while the model cannot be loaded; False without one."""
        uri = self.service.backup_model
        if not uri or self.on_backup or self.staging is not None:
            return False
        logger.warning(
            "service %s loads its backup model %s because: %s", self.service.name, uri, reason
        )
        self.staging = Staging(version=None, uri=uri, backup=True)
        self._resolve(uri, self._downloaded)
        return True

    # resolving (the resolver subprocess, or at once when no registry is needed)
    def _resolve(
        self,
        uri: str,
        on_done: Callable[[dict[str, Any] | None, str | None], None],
        *,
        location: str | None = None,
        download: bool = True,
    ) -> None:
        """Resolve (and download) ``uri``, then call ``on_done(found, error)`` from the loop."""
        from scanflow.serving.resolve import cache_path, resolve

        ref = parse_uri(uri)
        cached = ref.kind == "version" and download
        if cached and ref.version is not None:
            cached = (
                cache_path(self.options.model_cache, ref.name, ref.version) / "MLmodel"
            ).is_file()
        if ref.kind == "local" or cached:  # no registry, no MLflow: answer now
            try:
                found = resolve(uri, tracking_uri=None, cache_dir=self.options.model_cache)
            except ModelLoadError as exc:
                on_done(None, str(exc))
                return
            on_done({"version": found.version, "path": found.path}, None)
            return
        cmd = [sys.executable, "-m", "scanflow.serving.resolve", uri]
        cmd += ["--cache-dir", str(self.options.model_cache)]
        if self.options.tracking_uri:
            cmd += ["--tracking-uri", self.options.tracking_uri]
        if location:
            cmd += ["--location", location]
        if not download:
            cmd.append("--no-download")
        errors = self.options.service_dir / "resolver.log"
        with errors.open("wb") as stderr:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, close_fds=True)
        assert proc.stdout is not None
        os.set_blocking(proc.stdout.fileno(), False)
        self._job = _Job(proc, time.monotonic() + RESOLVE_TIMEOUT, on_done, errors)
        self._sel.register(proc.stdout, selectors.EVENT_READ, self._on_job)

    def _on_job(self, pipe: Any) -> None:
        job = self._job
        try:
            chunk = os.read(pipe.fileno(), 65536)
        except BlockingIOError:
            return
        if job is None:
            return
        if chunk:
            job.out += chunk
            return
        self._end_job()
        try:
            job.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            job.proc.kill()
        try:
            found = _resolver_reply(job.out.decode(errors="replace"), job.stderr_tail())
        except ModelLoadError as exc:
            job.on_done(None, str(exc))
            return
        job.on_done(found, None)

    def _end_job(self) -> None:
        job, self._job = self._job, None
        if job is not None and job.proc.stdout is not None:
            try:
                self._sel.unregister(job.proc.stdout)
            except (KeyError, ValueError):
                pass
            job.proc.stdout.close()

    def _check_job(self) -> None:
        job = self._job
        if job is not None and time.monotonic() > job.deadline:
            job.proc.kill()
            self._end_job()
            job.on_done(None, f"the model resolver took more than {RESOLVE_TIMEOUT:.0f} s")

    # staging: every worker loads the version, then one write switches traffic
    def _downloaded(self, found: dict[str, Any] | None, error: str | None) -> None:
        st = self.staging
        if st is None:
            return
        took = st.enter("loading")
        if found is None:
            self._abort(st, error or "unknown resolver error")
            return
        version = str(found["version"])
        st.version = f"backup-{version}" if st.backup else version
        st.path = str(found["path"])
        logger.info("version %s: downloaded in %.2f s", st.version, took)
        if not st.backup and self.current is not None and st.version == self.current["version"]:
            self.staging = None  # already serving it
            return
        live = [w for w in self.workers.values() if not w.draining]
        if not live:  # no worker yet: they load it when they start
            self.staging = None
            self._commit(self._last_gen + 1, st)
            return
        self._last_gen += 1
        st.gen = self._last_gen
        for worker in live:
            self._send_stage(worker)
        logger.info(
            "version %s: loading in %d worker(s) (generation %d)", st.version, len(live), st.gen
        )
        self._check_staging()

    def _send_stage(self, worker: Worker) -> None:
        st = self.staging
        assert st is not None
        message = {"op": "stage", "gen": st.gen, "path": st.path, "version": st.version}
        if worker.channel.send(message):
            st.waiting.add(worker.pid)

    def _on_staging_message(self, worker: Worker, msg: dict[str, Any]) -> None:
        st = self.staging
        if st is None or st.gen == 0 or int(msg["gen"]) != st.gen:
            return
        if msg["op"] == "staging":  # a worker reached the smoke test
            if st.phase == "loading":
                took = st.enter(str(msg.get("phase")))
                logger.info("version %s: %s (loaded in %.2f s)", st.version, st.phase, took)
            return
        st.waiting.discard(worker.pid)
        if msg.get("ok"):
            parts = ", ".join(f"{k} {v:.2f} s" for k, v in (msg.get("took") or {}).items())
            logger.info("version %s: worker %d staged it (%s)", st.version, worker.pid, parts)
        else:
            st.errors.append(f"worker {worker.pid}: {msg.get('error')}")
        self._check_staging()

    def _check_staging(self) -> None:
        st = self.staging
        if st is None or st.gen == 0:
            return
        if st.errors or time.monotonic() - st.loading_at > self.options.stage_timeout:
            reason = "; ".join(st.errors) or (
                f"workers did not load it within {self.options.stage_timeout:.0f} s"
            )
            self._abort(st, reason)
        elif not st.waiting:
            self._confirm(st)

    def _confirm(self, st: Staging) -> None:
        """Switch only if the alias still points at the staged version."""
        if st.backup or self.ref.kind != "alias":
            self._switch(st)
            return
        if st.phase != "confirming":
            st.enter("confirming")
        if self._watcher is not None:
            version = self._alias_version()
            if version is not None:
                self._confirmed(st, version)
        elif self._job is None:

            def confirm(found: dict[str, Any] | None, error: str | None) -> None:
                if found:
                    self._confirmed(st, str(found["version"]))

            self._resolve(self.service.model, confirm, download=False)

    def _confirmed(self, st: Staging, version: str) -> None:
        if self.staging is not st or st.waiting:
            return
        if version == st.version:
            self._switch(st)
            return
        logger.warning(
            "alias %s@%s moved to version %s while version %s was loading: not switching to it",
            self.ref.name,
            self.ref.alias,
            version,
            st.version,
        )
        self.staging = None
        self._drop_staged()
        self.history.append(
            {"at": time.time(), "event": "abandoned", "version": st.version, "alias": version}
        )
        self._next_poll = 0.0

    def _switch(self, st: Staging) -> None:
        self.staging = None
        st.enter("switched")
        self._commit(st.gen, st)
        self._drop_staged()

    def _drop_staged(self) -> None:
        for worker in self.workers.values():
            worker.channel.send({"op": "drop", "keep": self.generation.get()})

    def _abort(self, st: Staging, reason: str) -> None:
        self.staging = None
        if st.gen:
            self._drop_staged()
        if st.backup:
            logger.error("backup model %s cannot be loaded either: %s", st.uri, reason)
            return
        self._fail(f"version {st.version or st.uri} was not switched in: {reason}", st.version)
        if self.current is None:
            self._next_poll = time.monotonic() + self._retry_interval()
            if not self._serve_backup(reason):
                logger.error(
                    "service %s is NOT READY: %s (it keeps running and retries every %.0f s)",
                    self.service.name,
                    reason,
                    self._retry_interval(),
                )

    def _commit(self, gen: int, st: Staging) -> None:
        version, path = str(st.version), st.path
        previous = self.current["version"] if self.current else None
        self._last_gen = max(self._last_gen, gen)
        self.generation.set(gen)  # <- every worker switches here
        self.current = {"version": version, "path": path, "gen": gen, "since": time.time()}
        self._keep_out, self._optimize = self._worker_traits(path)
        self.on_backup = st.backup
        if not self.on_backup:
            self.last_error = None
        self.failed_versions.pop(version, None)
        self._failed_at.pop(version, None)
        self.metrics.model_ready.set(1)
        self.metrics.model_version.set(_numeric(version))
        took = {k: round(v, 3) for k, v in st.took.items()}
        seconds = round(time.monotonic() - st.seen, 3)
        if previous is not None:
            self.metrics.swaps.inc()
        logger.info(
            "version %s: switched, %.2f s after it was seen (%s); service %s was serving %s",
            version,
            seconds,
            ", ".join(f"{k} {v:.2f} s" for k, v in took.items()),
            self.service.name,
            previous,
        )
        if st.backup:
            logger.warning("service %s serves its backup model %s", self.service.name, st.uri)
        self.history.append(
            {
                "at": time.time(),
                "event": "serving",
                "version": version,
                "previous": previous,
                "seconds": seconds,
                "took": took,
            }
        )
        for worker in self.workers.values():
            worker.channel.send({"op": "reason", "reason": ""})

    def _fail(self, reason: str, version: str | None) -> None:
        self.last_error = reason
        self.metrics.load_failures.inc()
        if version:
            self.failed_versions[version] = {"error": reason, "at": time.time()}
            self._failed_at[version] = time.monotonic()
        self.history.append(
            {"at": time.time(), "event": "load_failed", "version": version, "error": reason}
        )
        if self.current is not None:
            logger.error(
                "keeping version %s of %s: %s", self.current["version"], self.service.name, reason
            )
        else:
            logger.error("service %s not ready: %s", self.service.name, reason)
            for worker in self.workers.values():
                worker.channel.send({"op": "reason", "reason": reason})

    def _worker_traits(self, path: str) -> tuple[list[str], bool]:
        """What workers started for the model in ``path`` keep out, and whether they run
        with ``PYTHONOPTIMIZE=2`` (:mod:`scanflow.serving.lean`)."""
        from scanflow.serving.lean import NEVER_NEEDED, not_needed, optimizable

        try:
            mlmodel = read_mlmodel(path)
        except ModelLoadError:
            return list(NEVER_NEEDED), False
        fast = self.service.fast_path
        return list(not_needed(mlmodel, fast)), optimizable(mlmodel, fast)

    def _retry_interval(self) -> float:
        return max(self.service.poll_interval, 5.0)

    # -- workers ----------------------------------------------------------------------
    def _maintain_pool(self) -> None:
        if self.stopping:
            return
        live = [w for w in self.workers.values() if not w.draining]
        if len(live) > self.target:
            for worker in sorted(live, key=lambda w: w.started, reverse=True)[
                : len(live) - self.target
            ]:
                self._retire(worker)
        elif len(live) < self.target:
            now = time.monotonic()
            self._crashes = [t for t in self._crashes if now - t < 10]
            if len(self._crashes) >= 5:
                return  # crash loop: wait before forking again
            for _ in range(self.target - len(live)):
                self._spawn()

    def _retire(self, worker: Worker) -> None:
        if not worker.draining:
            worker.draining = True
            if not worker.channel.send({"op": "drain"}):
                _kill(worker.pid, signal.SIGTERM)
            if self.staging is not None:
                self.staging.waiting.discard(worker.pid)

    def _spawn(self) -> None:
        from scanflow.serving.worker import ENV_SETUP, WorkerSetup

        assert self.sock is not None
        parent_end, child_end = socket.socketpair()
        setup = WorkerSetup(
            listen_fd=self.sock.fileno(),
            control_fd=child_end.fileno(),
            generation_file=str(self.generation.path),
            service=self.service.model_dump(mode="json"),
            predictions_dir=str(self.options.predictions_dir),
            max_request_bytes=self.options.max_request_bytes,
            keep_alive=self.options.keep_alive,
            drain_timeout=self.options.drain_timeout,
            model=dict(self.current) if self.current else None,
            keep_out=self._keep_out,
            reason=self.last_error or "the model is still loading",
            token=self.token,
        )
        env = {  # defaults for workers; the environment's own settings win
            "MALLOC_ARENA_MAX": "2",  # threads' malloc arenas would only hold freed memory
            **({"PYTHONOPTIMIZE": "2"} if self._optimize else {}),  # no docstrings: ~16 MB
            **os.environ,
            ENV_SETUP: setup.to_env(),
            "SCANFLOW_LOG_LEVEL": logging.getLevelName(logging.getLogger().level),
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "scanflow.serving.worker"],
            env=env,
            pass_fds=(self.sock.fileno(), child_end.fileno()),
        )
        child_end.close()
        channel = SupervisorEnd(parent_end)
        worker = Worker(proc=proc, channel=channel, started=time.monotonic())
        self.workers[proc.pid] = worker
        self._sel.register(
            parent_end, selectors.EVENT_READ, lambda _sock, w=worker: self._on_worker(w)
        )
        if self.staging is not None and self.staging.gen:  # born during a staging: stage too
            self._send_stage(worker)
        self.metrics.workers.set(len([w for w in self.workers.values() if not w.draining]))

    def _on_worker(self, worker: Worker) -> None:
        messages = worker.channel.receive()
        if messages is None:
            self._sel.unregister(worker.channel.sock)
            return
        for msg in messages:
            op = msg.get("op")
            if op == "ready":
                worker.ready = True
                parts = ", ".join(f"{k} {v:.2f} s" for k, v in (msg.get("took") or {}).items())
                logger.info(
                    "worker %d ready %.2f s after it was started (%s)",
                    worker.pid,
                    time.monotonic() - worker.started,
                    parts,
                )
                gen = self.current["gen"] if self.current else None
                if msg.get("error") and gen is not None and msg.get("gen") is None:
                    self._worker_load_failed(msg["error"])
            elif op in ("staging", "staged"):
                self._on_staging_message(worker, msg)
            elif op == "rpc":
                self._rpc(worker, msg)

    def _worker_load_failed(self, error: str) -> None:
        """A worker could not load the committed version: the service is not ready."""
        version = self.current["version"] if self.current else None
        self.current = None
        self.metrics.model_ready.set(0)
        self._fail(f"version {version} cannot be loaded: {error}", version)
        self._next_poll = time.monotonic() + self._retry_interval()
        self._serve_backup(error)

    def _rpc(self, worker: Worker, msg: dict[str, Any]) -> None:
        method, params = msg.get("method"), msg.get("params") or {}
        try:
            if method == "status":
                result = self.status()
            elif method == "scale":
                if "workers" not in params:
                    raise ServingError('send {"workers": N} to scale')
                result = self.scale(params["workers"])
                if params.get("wait"):
                    timeout = float(params.get("timeout", 30))
                    self._deferred.append(
                        _Deferred(worker.pid, msg["id"], time.monotonic() + timeout)
                    )
                    return
            elif method == "refresh":
                result = self.refresh()
            else:
                raise ServingError(f"unknown admin call {method!r}")
        except ServingError as exc:
            result = {"error": str(exc), "status": 400}
        worker.channel.send({"op": "reply", "id": msg["id"], "result": result})

    def _settled(self) -> bool:
        live = [w for w in self.workers.values() if not w.draining]
        # a retiring worker that carries a waiting admin call cannot leave before its answer
        holding = {d.worker_pid for d in self._deferred}
        return (
            len(live) == self.target
            and all(w.ready for w in live)
            and not any(w.draining and w.pid not in holding for w in self.workers.values())
        )

    def _answer_deferred(self) -> None:
        if not self._deferred:
            return
        now, settled = time.monotonic(), self._settled()
        keep = []
        for d in self._deferred:
            worker = self.workers.get(d.worker_pid)
            if settled or now >= d.deadline or worker is None:
                if worker is not None:
                    worker.channel.send(
                        {
                            "op": "reply",
                            "id": d.ident,
                            "result": {**self.status(), "settled": settled},
                        }
                    )
            else:
                keep.append(d)
        self._deferred = keep

    def _reap(self) -> None:
        for pid in list(self.workers):
            code = self.workers[pid].proc.poll()
            if code is None:
                continue
            worker = self.workers.pop(pid)
            try:
                self._sel.unregister(worker.channel.sock)
            except (KeyError, ValueError):
                pass
            worker.channel.close()
            metrics_mod.process_exited(pid)
            if self.staging is not None:
                self.staging.waiting.discard(pid)
            if worker.draining:
                logger.info("worker %d retired", pid)
            else:
                self._crashes.append(time.monotonic())
                logger.error("worker %d exited unexpectedly (code %s); replacing it", pid, code)
            self.metrics.workers.set(len([w for w in self.workers.values() if not w.draining]))

    def _cleanup(self) -> None:
        if self.sock is not None:
            self.sock.close()
        if self._job is not None:
            self._job.proc.kill()
        signal.set_wakeup_fd(-1)


ENV_OPTIONS = "SCANFLOW_SUPERVISOR"


def exec_supervisor(options: ServeOptions, log_level: str = "info") -> None:
    """Replace this process with a bare supervisor (``python -m scanflow.serving.supervisor``)
    that imports only what supervising needs; the PID stays the same."""
    env = {
        **os.environ,
        ENV_OPTIONS: json.dumps(options.to_json()),
        "SCANFLOW_LOG_LEVEL": log_level.upper(),
    }
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "scanflow.serving.supervisor"], env)


def main() -> int:
    """Entry point of ``python -m scanflow.serving.supervisor`` (options in the environment)."""
    logging.basicConfig(
        level=os.environ.get("SCANFLOW_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s",
    )
    options = ServeOptions.from_json(json.loads(os.environ.pop(ENV_OPTIONS)))
    try:
        return Supervisor(options).run()
    except ScanflowError as exc:
        logger.error("%s", exc)
        return exc.exit_code


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _numeric(version: str) -> float:
    try:
        return float(version)
    except ValueError:
        return 0.0


def _resolver_reply(stdout: str, stderr: str) -> dict[str, Any]:
    lines = [line for line in stdout.strip().splitlines() if line.startswith("{")]
    if not lines:
        tail = stderr.strip().splitlines()[-3:]
        raise ModelLoadError("the model resolver failed: " + (" | ".join(tail) or "no output"))
    reply = json.loads(lines[-1])
    if not reply.get("ok"):
        raise ModelLoadError(reply.get("error", "unknown resolver error"))
    return reply


__all__ = ["Supervisor", "exec_supervisor"]

if __name__ == "__main__":
    sys.exit(main())
