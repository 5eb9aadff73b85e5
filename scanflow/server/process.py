"""The control server as a child process (what ``scanflow up`` starts): ``scanflow
server`` on a free port, its output in a log file, its URL read from that log."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from scanflow.children import stop_child
from scanflow.errors import ScanflowError

_LISTENING = re.compile(r"listening on (http://\S+)")


class ServerProcess:
    """``scanflow --app APP server --host HOST --port PORT`` (port 0: a free one)."""

    def __init__(self, app_dir: Path, log_file: Path, host: str = "127.0.0.1", port: int = 0):
        self.log_file = log_file
        log_file.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "scanflow.cli.main", "--app", str(app_dir), "server"]
        command += ["--host", host, "--port", str(port)]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with open(log_file, "wb") as out:
            self.proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_url(self, timeout: float = 60.0) -> str:
        """The URL the server listens on, once it says so in its log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = _LISTENING.search(self.log_file.read_text(errors="replace"))
            if found:
                return found.group(1)
            if self.proc.poll() is not None:
                raise ScanflowError(
                    f"the control server exited with code {self.proc.returncode}; "
                    f"see {self.log_file}"
                )
            time.sleep(0.1)
        raise ScanflowError(
            f"the control server did not start within {timeout} s; see {self.log_file}"
        )

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM, then SIGKILL after ``timeout``; returns the exit code."""
        return stop_child(self.proc, timeout)
