"""Processes of the stack: started detached, recorded by PID, stopped by that PID only.

A record keeps the process's start time next to its PID, so a PID that the system has
since given to another program is never signalled.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class ProcessRecord:
    """One started server process: its PID, start time and log file."""

    name: str
    pid: int
    create_time: float
    log_path: str

    def alive(self) -> bool:
        """True while this very process (same PID, same start time) runs."""
        import psutil

        _reap(self.pid)
        try:
            process = psutil.Process(self.pid)
            if abs(process.create_time() - self.create_time) > 0.05:
                return False
            return process.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for the state file."""
        return asdict(self)


def spawn(
    name: str,
    argv: list[str],
    *,
    log_path: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    user: str | None = None,
) -> ProcessRecord:
    """Start ``argv`` in its own session (it outlives the caller), output to ``log_path``."""
    import psutil

    log_path.parent.mkdir(parents=True, exist_ok=True)
    extra: dict[str, Any] = {}
    if user is not None:
        extra = {"user": user, "group": _group_of(user), "extra_groups": []}
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **extra,
        )
    # The Popen object is dropped on purpose: the stack is managed through PIDs, across
    # CLI invocations; subprocess reaps the child if it ends while we still run.
    log.info("started %s (pid %d): %s", name, proc.pid, " ".join(argv[:3]))
    return ProcessRecord(name, proc.pid, psutil.Process(proc.pid).create_time(), str(log_path))


def stop(
    record: ProcessRecord,
    *,
    sig: signal.Signals = signal.SIGTERM,
    grace: float = 10.0,
    group: bool = True,
) -> bool:
    """Send ``sig`` to the process (its group when ``group``), SIGKILL after ``grace`` seconds.

    Returns False when the process was not running any more.
    """
    if not record.alive():
        return False
    _signal(record, sig, group)
    if not _wait_dead(record, grace):
        log.info(
            "%s (pid %d) still runs %.0fs after %s; killing it",
            record.name,
            record.pid,
            grace,
            sig.name,
        )
        _signal(record, signal.SIGKILL, group)
        _wait_dead(record, 10.0)
    return True


def wait_until(
    check: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    watch: ProcessRecord | None = None,
    on_timeout: Callable[[str], Exception],
) -> T:
    """Poll ``check`` (with a growing interval) until it returns a value.

    ``on_timeout(reason)`` builds the exception raised when time runs out or when the
    ``watch``-ed process exits first.
    """
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        value = check()
        if value is not None and value is not False:
            return value
        if watch is not None and not watch.alive():
            raise on_timeout(f"{watch.name} exited while waiting for {what}")
        if time.monotonic() > deadline:
            raise on_timeout(f"{what} not ready after {timeout:.0f}s")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.25)


def log_tail(path: str | Path, lines: int = 12) -> str:
    """The last ``lines`` lines of a log file (empty when it does not exist)."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def resident_memory(records: list[ProcessRecord]) -> dict[str, int]:
    """Resident memory of each record's process and its children, in bytes (``rss``, ``pss``)."""
    import psutil

    rss = pss = 0
    for record in records:
        if not record.alive():
            continue
        try:
            root = psutil.Process(record.pid)
            for process in [root, *root.children(recursive=True)]:
                info = process.memory_full_info()
                rss += info.rss
                pss += getattr(info, "pss", info.rss)
        except psutil.Error:
            continue
    return {"rss": rss, "pss": pss}


def _signal(record: ProcessRecord, sig: signal.Signals, group: bool) -> None:
    try:
        if group:
            os.killpg(record.pid, sig)
        else:
            os.kill(record.pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError as exc:
        from scanflow.errors import TrackingError

        raise TrackingError(f"cannot stop {record.name} (pid {record.pid}): {exc}") from exc


def _wait_dead(record: ProcessRecord, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    delay = 0.02
    while record.alive():
        if time.monotonic() > deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 1.5, 0.2)
    return True


def _reap(pid: int) -> None:
    """Collect the exit status when ``pid`` is our own finished child (no zombie left)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _group_of(user: str) -> int:
    import pwd

    return pwd.getpwnam(user).pw_gid
