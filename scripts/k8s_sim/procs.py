"""Start background processes and stop exactly those again, by recorded PID.

A record holds the PID and the process's start time from /proc, so a PID reused by some
other program after ours exited is never signalled."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProcRecord:
    """What ``down`` needs to find and stop one started process."""

    name: str
    pid: int
    start_ticks: int
    argv0: str
    log: str

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return asdict(self)


def _start_ticks(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (field 22 of /proc/PID/stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":  # exited, not yet reaped: not running
        return None
    return int(fields[19])


def alive(rec: ProcRecord) -> bool:
    """Whether the recorded process (same PID *and* same start time) still runs."""
    return _start_ticks(rec.pid) == rec.start_ticks


def rss_bytes(rec: ProcRecord) -> int | None:
    """Resident set size of the recorded process, or None if it does not run."""
    if not alive(rec):
        return None
    try:
        for line in Path(f"/proc/{rec.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def start(
    name: str,
    argv: list[str],
    logfile: Path,
    env: dict[str, str] | None = None,
    pass_fds: tuple[int, ...] = (),
) -> ProcRecord:
    """Start ``argv`` detached (own session, stdin from /dev/null, output to ``logfile``);
    ``pass_fds`` are inherited by it (e.g. a locked file it keeps locked while it runs)."""
    with open(logfile, "ab") as out, open(os.devnull, "rb") as devnull:
        proc = subprocess.Popen(
            argv,
            stdin=devnull,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            close_fds=True,
            pass_fds=pass_fds,
        )
    ticks = _start_ticks(proc.pid)
    # Not waited on here: the process outlives this program; the record is what stops it.
    proc.returncode = 0  # keep Popen.__del__ from warning about a still-running child
    if ticks is None:
        raise OSError(f"{name} exited immediately; see {logfile}")
    log.info("started %s pid %d", name, proc.pid)
    return ProcRecord(name, proc.pid, ticks, argv[0], str(logfile))


def stop(records: list[ProcRecord], timeout: float = 20.0) -> list[str]:
    """SIGTERM the still-running recorded processes, SIGKILL after ``timeout``; return names
    of the processes that were signalled."""
    running = [r for r in records if alive(r)]
    for rec in running:
        try:
            os.kill(rec.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while any(alive(r) for r in running) and time.monotonic() < deadline:
        _reap()
        time.sleep(0.05)
    for rec in running:
        if alive(rec):
            log.warning(
                "%s (pid %d) ignored SIGTERM for %.0f s; killing", rec.name, rec.pid, timeout
            )
            try:
                os.kill(rec.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 5
    while any(alive(r) for r in running) and time.monotonic() < deadline:
        _reap()
        time.sleep(0.05)
    return [r.name for r in running]


def _reap() -> None:
    """Collect exited children of this program (when ``up`` itself stops what it started)."""
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass
