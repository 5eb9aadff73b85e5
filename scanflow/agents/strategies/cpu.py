"""CPU facts for scaling: how busy the machine is and how much of it a service uses.

:func:`sample` reads cumulative CPU seconds (the machine's, and the service's worker
processes'); :func:`shares` turns two samples into shares of the whole machine, so a
sensor keeps the previous sample as its watermark and the rule sees plain numbers.
"""

from __future__ import annotations

from typing import Any


def sample(pids: list[int], at: float) -> dict[str, Any]:
    """Cumulative CPU seconds now: the machine's busy and total, and each worker's."""
    import psutil

    times = psutil.cpu_times()
    total = sum(times)
    idle = times.idle + getattr(times, "iowait", 0.0)
    workers: dict[str, float] = {}
    for pid in pids:
        try:
            cpu = psutil.Process(pid).cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        workers[str(pid)] = cpu.user + cpu.system
    return {"at": at, "busy": total - idle, "total": total, "workers": workers}


def shares(previous: dict[str, Any] | None, current: dict[str, Any]) -> dict[str, float]:
    """``cpu_busy``: share of the machine busy between the samples (0..1); ``cpu_service``:
    share used by the service's workers (those present in both samples); ``cpu_others``:
    the rest of the busy share. Empty when there is no previous sample."""
    if not previous:
        return {}
    total = current["total"] - previous["total"]
    if total <= 0:
        return {}
    busy = min(1.0, max(0.0, (current["busy"] - previous["busy"]) / total))
    old = previous.get("workers", {})
    used = sum(max(0.0, s - old[pid]) for pid, s in current["workers"].items() if pid in old)
    seconds = max(current["at"] - previous["at"], 1e-6)
    cores = total / seconds  # CPU seconds per wall second: the number of cores
    service = min(busy, used / seconds / max(cores, 1e-6))
    return {"cpu_busy": busy, "cpu_service": service, "cpu_others": max(0.0, busy - service)}
