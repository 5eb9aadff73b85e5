"""The local engine's handle on a process, kept in a record's ``engine_ref`` (JSON).

A run's reference holds the engine process, a step's its current step process, an
attempt's that attempt's process and log file: ``{"pid": 4242, "pid_started_at":
1765000000.5, "log_path": ".../attempt-1.log"}`` (keys that are unknown are left absent).
The start time tells a live process from another that got the same PID later.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class LocalProcessRef:
    """A process of this machine: its PID, its start time and the file it logs to."""

    pid: int | None = None
    pid_started_at: float | None = None
    log_path: str | None = None

    @classmethod
    def of(cls, pid: int, log_path: str | None = None) -> LocalProcessRef:
        """Process ``pid`` as it runs now (its start time read from the OS)."""
        return cls(pid, process_start_time(pid), log_path)

    @classmethod
    def from_ref(cls, ref: Mapping[str, Any] | None) -> LocalProcessRef:
        """The process a record's ``engine_ref`` names (all unknown for None or ``{}``)."""
        ref = ref or {}
        return cls(**{f.name: ref.get(f.name) for f in fields(cls)})

    def to_ref(self) -> dict[str, Any]:
        """The JSON form stored in ``engine_ref`` (unknown fields left out)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return {k: v for k, v in values.items() if v is not None}

    def with_pid(self, pid: int) -> LocalProcessRef:
        """This reference naming process ``pid`` (as it runs now)."""
        return replace(self, pid=pid, pid_started_at=process_start_time(pid))

    def alive(self) -> bool:
        """Whether the process runs and (when its start time is known) is the same one."""
        if not self.pid:
            return False
        import psutil

        try:
            process = psutil.Process(self.pid)
            if process.status() == psutil.STATUS_ZOMBIE:
                return False
            started = self.pid_started_at
            return started is None or abs(process.create_time() - started) < 1.0
        except psutil.Error:
            return False

    def gone(self) -> bool:
        """Whether a process was recorded and is no longer running."""
        return bool(self.pid) and not self.alive()


def process_start_time(pid: int) -> float | None:
    """When process ``pid`` started (None when it is already gone)."""
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None
