"""One step process: started in its own process group, logged to a file, killed as a group."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

KILL_GRACE_SECONDS = 5.0


@dataclass
class Outcome:
    """How a step process ended."""

    exit_code: int
    timed_out: bool
    duration: float
    lost: str | None = None  # why the process could not be followed to its end


@dataclass(frozen=True)
class StepStart:
    """What to start: ``argv`` (``argv[0]`` is the Python) with exactly ``env``, in ``cwd``,
    its output appended to ``log_path``, stopped after ``timeout`` seconds; ``preload``:
    modules it will import."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path
    log_path: Path
    timeout: float | None = None
    preload: tuple[str, ...] = ()


class StepProcess(ABC):
    """A started step process; :meth:`wait` blocks until it ends (or its timeout kills it).
    How it was started (spawned, forked) is the subclass's; it sets ``pid`` and then calls
    :meth:`_watch`."""

    pid: int

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.timed_out = False
        self.lost: str | None = None
        self._timer: threading.Timer | None = None

    def _watch(self, timeout: float | None) -> None:
        if timeout:
            self._timer = threading.Timer(timeout, self._on_timeout)
            self._timer.daemon = True
            self._timer.start()

    @abstractmethod
    def _exit_code(self, timeout: float | None) -> int | None:
        """The exit code once the process ended, None if it still runs after ``timeout``
        seconds (None: wait as long as it runs)."""

    def _ended(self) -> None:  # noqa: B027 - most processes hold nothing
        """Release what the process held once it ended."""

    def _on_timeout(self) -> None:
        self.timed_out = True
        log.warning("step process %d timed out; stopping its process group", self.pid)
        self.terminate()

    def terminate(self, grace: float = KILL_GRACE_SECONDS) -> None:
        """SIGTERM the whole group, then SIGKILL whatever is left after ``grace`` seconds."""
        kill_group(self.pid, signal.SIGTERM)
        self._exit_code(grace)
        kill_group(self.pid, signal.SIGKILL)

    def wait(self) -> Outcome:
        """Block until the process ends; leftovers of its group are killed."""
        code = self._exit_code(None)
        assert code is not None
        if self._timer is not None:
            self._timer.cancel()
        kill_group(self.pid, signal.SIGKILL)
        self._ended()
        return Outcome(code, self.timed_out, time.monotonic() - self.started, self.lost)


class SpawnedProcess(StepProcess):
    """A new Python (or any) process started from ``argv``."""

    def __init__(self, step: StepStart) -> None:
        super().__init__()
        step.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(step.log_path, "ab")  # noqa: SIM115 - closed in _ended()
        self.proc = subprocess.Popen(
            step.argv,
            env=step.env,
            cwd=step.cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.pid = self.proc.pid
        self._watch(step.timeout)

    def _exit_code(self, timeout: float | None) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def _ended(self) -> None:
        self._log.close()


def kill_group(pgid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to process group ``pgid`` if it still exists."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
