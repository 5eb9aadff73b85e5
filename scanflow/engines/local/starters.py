"""How the local engine starts a step's process, chosen by name (an executor's
``start_method``), as :mod:`multiprocessing` names its own:

- ``spawn``: a new process from its command line (the default);
- ``forkserver``: a fork of a server process that has already imported the step's
  libraries (:mod:`scanflow.engines.local.forkserver`), which skips Python's start-up and
  those imports: seconds saved on every start of a step that imports scikit-learn or
  MLflow, which pays off when the same step starts many times (tuning trials, schedules).

A starter is made once per engine and closed with it.
"""

from __future__ import annotations

import json
import logging
import subprocess
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import IO, Any, Protocol

from scanflow.engines.local.process import SpawnedProcess, StepProcess, StepStart

log = logging.getLogger(__name__)

# what the engine sets for each start; a fork server is shared by starts that differ only
# in these (everything else in the environment may matter to the imports it did)
PER_START = frozenset(
    {
        "SCANFLOW_RUN_ID",
        "SCANFLOW_STEP",
        "SCANFLOW_OUTPUTS_DIR",
        "SCANFLOW_STEP_CALL",
        "SCANFLOW_MLFLOW_RUN_FILE",
        "MLFLOW_RUN_ID",
    }
)
SERVER_MODULE = "scanflow.engines.local.forkserver"
LOST = -1  # the exit code of a child whose fork server ended before it


class Starter(Protocol):
    """Starts step processes; ``preloads``: whether it uses :attr:`StepStart.preload`
    (the engine reads a step's imports only for a starter that does)."""

    preloads: bool

    def start(self, step: StepStart) -> StepProcess:
        """Start ``step``'s process."""
        ...

    def close(self) -> None:
        """Stop what the starter keeps running."""
        ...


class SpawnStarter:
    """A new process per start."""

    preloads = False

    def __init__(self, state_dir: Path) -> None:
        del state_dir  # nothing to keep

    def start(self, step: StepStart) -> StepProcess:
        """A spawned process (it imports what it uses itself)."""
        return SpawnedProcess(step)

    def close(self) -> None:
        """Nothing to stop."""


class ForkedProcess(StepProcess):
    """A child of a fork server; the server reports its end."""

    def __init__(self, pid: int) -> None:
        super().__init__()
        self.pid = pid
        self.code: int | None = None
        self._done = threading.Event()

    def ended(self, code: int) -> None:
        """Called by the server's reader with the exit code."""
        self.code = code
        self._done.set()

    def _exit_code(self, timeout: float | None) -> int | None:
        self._done.wait(timeout)
        return self.code


class ForkServer:
    """One running fork server and the children it reports on."""

    def __init__(
        self, python: str, env: dict[str, str], preload: Sequence[str], log_path: Path
    ) -> None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = log_path
        with open(log_path, "ab") as errors:
            self.proc = subprocess.Popen(
                [python, "-m", SERVER_MODULE, *preload],
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
                start_new_session=True,
            )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._requests: IO[bytes] = self.proc.stdin
        self._lock = threading.Lock()
        self._next = 0
        self._starts: dict[int, Future[ForkedProcess]] = {}
        self._children: dict[int, ForkedProcess] = {}
        self._ready: Future[None] = Future()
        self.alive = True
        threading.Thread(
            target=self._read, args=(self.proc.stdout,), name="forkserver-reader", daemon=True
        ).start()

    def _read(self, replies: IO[bytes]) -> None:
        for line in replies:
            self._dispatch(json.loads(line))
        self._lost()

    def _dispatch(self, message: dict[str, Any]) -> None:
        if message.get("ready"):
            self._ready.set_result(None)
        elif "exit" in message:
            child = self._children.pop(message["pid"], None)
            if child is not None:
                child.ended(message["exit"])
        else:
            with self._lock:
                future = self._starts.pop(message["id"])
            if "error" in message:
                future.set_exception(OSError(message["error"]))
            else:
                child = ForkedProcess(message["pid"])
                self._children[child.pid] = child
                future.set_result(child)

    def _lost(self) -> None:
        """The server ended: whatever waits on it learns so."""
        self.alive = False
        code = self.proc.wait()
        why = OSError(f"the fork server exited with code {code}; see {self.log_path}")
        if not self._ready.done():
            self._ready.set_exception(why)
        with self._lock:
            starts, self._starts = self._starts, {}
        for future in starts.values():
            future.set_exception(why)
        for child in list(self._children.values()):
            child.lost = f"the fork server exited with code {code} before the step ended"
            log.error("%s (process %d); see %s", child.lost, child.pid, self.log_path)
            child.ended(LOST)
        self._children.clear()

    def ready(self) -> None:
        """Block until the server has imported its modules (OSError if it died first)."""
        self._ready.result()

    def start(self, step: StepStart) -> ForkedProcess:
        """Fork a child that runs ``step.argv``."""
        future: Future[ForkedProcess] = Future()
        with self._lock:
            if not self.alive:
                raise OSError(f"the fork server has stopped; see {self.log_path}")
            self._next += 1
            self._starts[self._next] = future
            request = {"id": self._next, "argv": step.argv, "env": step.env}
            request.update(cwd=str(step.cwd), log=str(step.log_path))
            try:
                self._requests.write(json.dumps(request).encode() + b"\n")
                self._requests.flush()
            except OSError:
                self._starts.pop(self._next, None)
                raise
        return future.result()

    def close(self, grace: float = 10.0) -> None:
        """End the server (its running children go on) and reap it."""
        try:
            self._requests.close()
        except OSError:
            pass
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class ForkServerStarter:
    """Forks each start from a server that imported ``preload`` (one server per Python,
    module list and environment, started on first use)."""

    preloads = True

    def __init__(self, state_dir: Path) -> None:
        self.log_path = state_dir / "forkserver.log"
        self._servers: dict[tuple[Any, ...], ForkServer] = {}
        self._lock = threading.Lock()

    def _server(self, python: str, env: dict[str, str], preload: Sequence[str]) -> ForkServer:
        shared = {k: v for k, v in env.items() if k not in PER_START}
        key = (python, tuple(preload), tuple(sorted(shared.items())))
        with self._lock:
            server = self._servers.get(key)
            if server is None or not server.alive:
                log.info("starting a fork server for %s with %s", python, ", ".join(preload))
                server = self._servers[key] = ForkServer(python, shared, preload, self.log_path)
        server.ready()
        return server

    def start(self, step: StepStart) -> StepProcess:
        """A child of the server for the step's Python and ``preload``."""
        step.log_path.parent.mkdir(parents=True, exist_ok=True)
        child = self._server(step.argv[0], step.env, step.preload).start(step)
        child._watch(step.timeout)
        return child

    def close(self) -> None:
        """Stop every server."""
        with self._lock:
            servers, self._servers = list(self._servers.values()), {}
        for server in servers:
            server.close()


STARTERS: dict[str, Callable[[Path], Starter]] = {
    "spawn": SpawnStarter,
    "forkserver": ForkServerStarter,
}
START_METHODS = tuple(STARTERS)
