"""The supervisor: one process that owns the port, the workers and the model version.

- **Workers.** The supervisor binds the listening socket and starts worker processes
  (:mod:`scanflow.serving.worker`) that all accept on it. :meth:`Supervisor.scale` grows
  or shrinks the pool live: a new worker accepts only once its model is loaded; a retiring
  worker stops accepting and finishes every request it holds (see
  :mod:`scanflow.serving.http`), so no request is dropped. Crashed workers are replaced.
- **Hot-swap.** For ``models:/name@alias`` the supervisor polls where the alias points
  (:mod:`scanflow.serving.watch`). A new version is downloaded by a resolver subprocess,
  then staged in every worker, which loads it and smoke-tests it; when all have it, one
  write to the shared generation (:mod:`scanflow.serving.slots`) switches traffic at once.
  A version that fails anywhere is dropped, the old one keeps serving, and the reason is
  logged, counted in ``/metrics`` and shown by ``/admin/status``.

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
from dataclasses import dataclass, field
from typing import Any

from scanflow.auth import TOKEN_ENV, app_token, token_path
from scanflow.errors import ScanflowError
from scanflow.serving import metrics as metrics_mod
from scanflow.serving.control import SupervisorEnd
from scanflow.serving.errors import ModelLoadError, ServingError
from scanflow.serving.options import ServeOptions
from scanflow.serving.resolve import parse_uri, read_mlmodel
from scanflow.serving.slots import SharedGeneration

logger = logging.getLogger("scanflow.serving.supervisor")

TICK = 0.25
RETRY_FAILED_AFTER = 60.0


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
    """A version being loaded by every worker before the switch."""

    gen: int
    version: str
    path: str
    waiting: set[int]
    started: float
    errors: list[str] = field(default_factory=list)


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
        self.target = self.service.workers
        self.workers: dict[int, Worker] = {}
        self.generation = SharedGeneration(options.service_dir / "generation", create=True)
        self.current: dict[str, Any] | None = None  # version, path, gen, since
        self.staging: Staging | None = None
        self.last_error: str | None = None
        self.failed_versions: dict[str, float] = {}
        self.history: list[dict[str, Any]] = []
        self.stopping = False
        self._deferred: list[_Deferred] = []
        self._resolver: subprocess.Popen | None = None
        self._resolver_out = b""
        self._watcher: Any = None
        self._next_poll = 0.0
        self._crashes: list[float] = []
        self._lean = False
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
            "staging": (
                {"version": self.staging.version, "waiting": len(self.staging.waiting)}
                if self.staging
                else None
            ),
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
            self._check_staging()
            self._answer_deferred()
            if self.ref.kind == "alias" and time.monotonic() >= self._next_poll:
                self._poll()
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
    def _initial_load(self) -> None:
        """Resolve the model before the first workers start, so they load it right away."""
        try:
            found = self._resolve_blocking()
            self._lean = self._is_lean(found["path"])
        except ModelLoadError as exc:
            self._fail(str(exc), found=None)
            self._next_poll = time.monotonic() + self._retry_interval()
            if not self._serve_backup(str(exc)):
                logger.error(
                    "service %s is NOT READY: %s (it keeps running and retries every %.0f s)",
                    self.service.name,
                    exc,
                    self._retry_interval(),
                )
            return
        self._commit(1, found["version"], found["path"])
        self._watcher_setup()
        self._next_poll = time.monotonic() + self.service.poll_interval

    def _serve_backup(self, reason: str) -> bool:
        """Serve ``backup_model`` while the model cannot be loaded; False without one."""
        uri = self.service.backup_model
        staging_backup = self.staging is not None and self.staging.version.startswith("backup-")
        if not uri or self.on_backup or staging_backup:
            return False
        try:
            ref = parse_uri(uri)
            if ref.kind == "local":
                from scanflow.serving.resolve import resolve

                found = resolve(ref.uri, tracking_uri=None, cache_dir=self.options.model_cache)
                found_dict = {"version": found.version, "path": found.path}
            else:
                out = subprocess.run(
                    self._resolver_cmd(uri), capture_output=True, text=True, timeout=600
                )
                found_dict = _resolver_reply(out.stdout, out.stderr)
        except ModelLoadError as exc:
            logger.error("backup model %s cannot be loaded either: %s", uri, exc)
            return False
        logger.warning(
            "service %s serves its backup model %s because: %s", self.service.name, uri, reason
        )
        if self.workers:
            self._stage(f"backup-{found_dict['version']}", found_dict["path"])
        else:
            self._lean = self._is_lean(found_dict["path"])
            self._commit(self._last_gen + 1, f"backup-{found_dict['version']}", found_dict["path"])
        return True

    def _is_lean(self, path: str) -> bool:
        from scanflow.serving.lean import model_is_lean

        try:
            return model_is_lean(read_mlmodel(path), self.service.fast_path)
        except ModelLoadError:
            return False

    def _retry_interval(self) -> float:
        return max(self.service.poll_interval, 5.0)

    def _resolver_cmd(self, uri: str) -> list[str]:
        cmd = [
            sys.executable,
            "-m",
            "scanflow.serving.resolve",
            uri,
            "--cache-dir",
            str(self.options.model_cache),
        ]
        if self.options.tracking_uri:
            cmd += ["--tracking-uri", self.options.tracking_uri]
        return cmd

    def _cached(self, version: str | None) -> dict[str, Any] | None:
        """A registry version already downloaded (no MLflow import needed to serve it)."""
        if version is None or self.ref.kind not in ("alias", "version"):
            return None
        from scanflow.serving.resolve import cache_path

        path = cache_path(self.options.model_cache, self.ref.name, version)
        return {"version": version, "path": str(path)} if (path / "MLmodel").is_file() else None

    def _resolve_blocking(self) -> dict[str, Any]:
        version = self.ref.version
        if self.ref.kind == "alias":
            self._watcher_setup()
            try:
                version = self._watcher.version() if self._watcher is not None else None
            except Exception:
                version = None
        cached = self._cached(version)
        if cached is not None:
            return cached
        if self.ref.kind == "local":
            from scanflow.serving.resolve import resolve

            found = resolve(self.ref.uri, tracking_uri=None, cache_dir=self.options.model_cache)
            return {"version": found.version, "path": found.path}
        out = subprocess.run(
            self._resolver_cmd(self.service.model), capture_output=True, text=True, timeout=600
        )
        return _resolver_reply(out.stdout, out.stderr)

    def _watcher_setup(self) -> None:
        if self.ref.kind != "alias" or self._watcher is not None:
            return
        from scanflow.serving.watch import watcher_for

        tracking = self.options.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or ""
        if not tracking:
            return
        self._watcher = watcher_for(
            tracking,
            self.ref.name,
            self.ref.alias or "",
            self.service.model,
            str(self.options.model_cache),
        )

    def _poll(self) -> None:
        """Is there a version to switch to? Starts the resolver when there is."""
        now = time.monotonic()
        interval = max(self.service.poll_interval, getattr(self._watcher, "min_interval", 0.0))
        self._next_poll = now + interval
        if self._resolver is not None or self.staging is not None:
            return
        if self.current is None or self.on_backup:  # resolve and load the model from scratch
            self._next_poll = now + self._retry_interval()
            self._start_resolver()
            return
        self._watcher_setup()
        if self._watcher is None:
            return
        try:
            version = self._watcher.version()
        except Exception as exc:
            logger.warning("cannot read alias %s of %s: %s", self.ref.alias, self.ref.name, exc)
            return
        if version is None or version == self.current["version"]:
            return
        failed_at = self.failed_versions.get(version)
        if failed_at is not None and now - failed_at < RETRY_FAILED_AFTER:
            return
        logger.info(
            "alias %s@%s moved to version %s (serving %s): loading it",
            self.ref.name,
            self.ref.alias,
            version,
            self.current["version"],
        )
        cached = self._cached(version)
        if cached is not None:
            self._resolved(cached)
            return
        self._start_resolver(f"models:/{self.ref.name}/{version}")

    def _start_resolver(self, uri: str | None = None) -> None:
        if self.ref.kind == "local":
            try:
                found = self._resolve_blocking()
            except ModelLoadError as exc:
                self._fail(str(exc), found=None)
                return
            self._resolved(found)
            return
        self._resolver = subprocess.Popen(
            self._resolver_cmd(uri or self.service.model),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            close_fds=True,
        )
        self._resolver_out = b""
        assert self._resolver.stdout is not None
        os.set_blocking(self._resolver.stdout.fileno(), False)
        self._sel.register(self._resolver.stdout, selectors.EVENT_READ, self._on_resolver)

    def _on_resolver(self, pipe: Any) -> None:
        try:
            chunk = os.read(pipe.fileno(), 65536)
        except BlockingIOError:
            return
        if chunk:
            self._resolver_out += chunk
            return
        self._sel.unregister(pipe)
        proc, self._resolver = self._resolver, None
        assert proc is not None
        try:
            stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            stderr = ""
        try:
            found = _resolver_reply(self._resolver_out.decode(errors="replace"), stderr)
        except ModelLoadError as exc:
            self._fail(str(exc), found=None)
            return
        self._resolved(found)

    def _resolved(self, found: dict[str, Any]) -> None:
        version = str(found["version"])
        if self.current is not None and version == self.current["version"]:
            return
        if self.current is None:  # first model: workers are already up, stage it in them
            self._watcher_setup()
        self._stage(version, found["path"])

    def _stage(self, version: str, path: str) -> None:
        self._last_gen += 1
        gen = self._last_gen
        live = [w for w in self.workers.values() if not w.draining]
        self.staging = Staging(gen, version, path, {w.pid for w in live}, time.monotonic())
        for worker in live:
            if not worker.channel.send(
                {"op": "stage", "gen": gen, "path": path, "version": version}
            ):
                self.staging.waiting.discard(worker.pid)
        logger.info("staging version %s (generation %d) in %d worker(s)", version, gen, len(live))
        self._check_staging()

    def _check_staging(self) -> None:
        staging = self.staging
        if staging is None:
            return
        if staging.errors or time.monotonic() - staging.started > self.options.stage_timeout:
            reason = "; ".join(staging.errors) or (
                f"workers did not load it within {self.options.stage_timeout:.0f} s"
            )
            self.staging = None
            for worker in self.workers.values():
                worker.channel.send({"op": "drop", "keep": self.generation.get()})
            self._fail(
                f"version {staging.version} was not switched in: {reason}",
                found={"version": staging.version},
            )
            return
        if staging.waiting:
            return
        self.staging = None
        self._commit(staging.gen, staging.version, staging.path)
        for worker in self.workers.values():
            worker.channel.send({"op": "drop", "keep": staging.gen})

    def _commit(self, gen: int, version: str, path: str) -> None:
        previous = self.current["version"] if self.current else None
        self._last_gen = max(self._last_gen, gen)
        self.generation.set(gen)  # <- every worker switches here
        self.current = {"version": version, "path": path, "gen": gen, "since": time.time()}
        self.on_backup = version.startswith("backup-")
        if not self.on_backup:
            self.last_error = None
        self.failed_versions.pop(version, None)
        self.metrics.model_ready.set(1)
        self.metrics.model_version.set(_numeric(version))
        if previous is not None:
            self.metrics.swaps.inc()
            logger.info(
                "service %s now serves version %s (was %s)", self.service.name, version, previous
            )
        self.history.append(
            {"at": time.time(), "event": "serving", "version": version, "previous": previous}
        )
        for worker in self.workers.values():
            worker.channel.send({"op": "reason", "reason": ""})

    def _fail(self, reason: str, found: dict[str, Any] | None) -> None:
        self.last_error = reason
        self.metrics.load_failures.inc()
        if found and found.get("version"):
            self.failed_versions[str(found["version"])] = time.monotonic()
        self.history.append({"at": time.time(), "event": "load_failed", "error": reason})
        if self.current is not None:
            logger.error(
                "keeping version %s of %s: %s", self.current["version"], self.service.name, reason
            )
        else:
            logger.error("service %s not ready: %s", self.service.name, reason)
            for worker in self.workers.values():
                worker.channel.send({"op": "reason", "reason": reason})

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
            lean=self._lean,
            reason=self.last_error or "the model is still loading",
            token=self.token,
        )
        env = {
            "MALLOC_ARENA_MAX": "2",  # threads' malloc arenas would only hold freed memory
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
        if self.staging is not None:  # a worker born during a staging must stage too
            self.staging.waiting.add(proc.pid)
            channel.send(
                {
                    "op": "stage",
                    "gen": self.staging.gen,
                    "path": self.staging.path,
                    "version": self.staging.version,
                }
            )
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
                gen = self.current["gen"] if self.current else None
                if msg.get("error") and gen is not None and msg.get("gen") is None:
                    self._worker_load_failed(msg["error"])
            elif op == "staged" and self.staging and int(msg["gen"]) == self.staging.gen:
                self.staging.waiting.discard(worker.pid)
                if not msg.get("ok"):
                    self.staging.errors.append(f"worker {worker.pid}: {msg.get('error')}")
                self._check_staging()
            elif op == "rpc":
                self._rpc(worker, msg)

    def _worker_load_failed(self, error: str) -> None:
        """A worker could not load the committed version: the service is not ready."""
        version = self.current["version"] if self.current else None
        self.current = None
        self.metrics.model_ready.set(0)
        self._fail(f"version {version} cannot be loaded: {error}", found={"version": version})
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
        if self._resolver is not None:
            self._resolver.kill()
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
