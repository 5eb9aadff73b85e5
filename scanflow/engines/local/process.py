"""One step process: started in its own process group, logged to a file, killed as a group."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
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


class StepProcess:
    """A started step process; :meth:`wait` blocks until it ends (or its timeout kills it)."""

    def __init__(
        self,
        argv: list[str],
        env: dict[str, str],
        cwd: Path,
        log_path: Path,
        timeout: float | None,
    ) -> None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in wait()
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.pid = self.proc.pid
        self.timed_out = False
        self._timer = threading.Timer(timeout, self._on_timeout) if timeout else None
        if self._timer is not None:
            self._timer.daemon = True
            self._timer.start()

    def _on_timeout(self) -> None:
        self.timed_out = True
        log.warning("step process %d timed out; stopping its process group", self.pid)
        self.terminate()

    def terminate(self, grace: float = KILL_GRACE_SECONDS) -> None:
        """SIGTERM the whole group, then SIGKILL whatever is left after ``grace`` seconds."""
        kill_group(self.pid, signal.SIGTERM)
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            pass
        kill_group(self.pid, signal.SIGKILL)

    def wait(self) -> Outcome:
        """Block until the process ends; leftovers of its group are killed."""
        code = self.proc.wait()
        if self._timer is not None:
            self._timer.cancel()
        kill_group(self.pid, signal.SIGKILL)
        self._log.close()
        return Outcome(code, self.timed_out, time.monotonic() - self.started)


def kill_group(pgid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to process group ``pgid`` if it still exists."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
