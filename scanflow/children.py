"""Child processes this process started: stopping them the same way everywhere."""

from __future__ import annotations

import signal
import subprocess


def stop_child(proc: subprocess.Popen, timeout: float) -> int:
    """SIGTERM ``proc`` (its graceful end), SIGKILL it after ``timeout`` seconds; returns
    its exit code. A process that has already ended is left as it is."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode
