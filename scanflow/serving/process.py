"""Running a service as its own process (what ``scanflow up``, engines and tests use)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from scanflow.auth import TOKEN_ENV, app_token
from scanflow.children import stop_child
from scanflow.serving.client import ServingClient
from scanflow.serving.errors import ServingError
from scanflow.spec.model import Service


def serve_command(
    service: Service,
    *,
    port: int,
    host: str = "127.0.0.1",
    state_dir: str | Path | None = None,
    tracking_uri: str | None = None,
    auth: bool = True,
) -> list[str]:
    """The ``scanflow serve`` command line that runs ``service``."""
    cmd = [
        sys.executable,
        "-m",
        "scanflow.cli.main",
        "serve",
        service.model,
        "--name",
        service.name,
        "--host",
        host,
        "--port",
        str(port),
        "--spec-json",
        service.model_dump_json(),
    ]
    if state_dir is not None:
        cmd += ["--state-dir", str(state_dir)]
    if tracking_uri:
        cmd += ["--tracking-uri", tracking_uri]
    if not auth:
        cmd.append("--no-auth")
    return cmd


class ServiceProcess:
    """A service running in a child process, stopped by its PID.

    Its ``client`` carries the application's token (``$SCANFLOW_TOKEN`` in ``env`` or the
    environment, else ``<state_dir>/token``, made now when missing), so it may scale.
    """

    def __init__(
        self,
        service: Service,
        *,
        port: int,
        host: str = "127.0.0.1",
        state_dir: str | Path | None = None,
        tracking_uri: str | None = None,
        log_file: str | Path | None = None,
        env: dict[str, str] | None = None,
        auth: bool = True,
    ) -> None:
        self.service = service
        self.url = f"http://{host}:{port}"
        # the child's default state folder is the current one's .scanflow, as here
        self.state_dir = Path(state_dir if state_dir is not None else ".scanflow").resolve()
        env = {**os.environ, **(env or {})}
        self.token: str | None = None
        if auth:  # read (or made) before the child starts: both then use the same token
            self.token = env.get(TOKEN_ENV) or app_token(self.state_dir)
        self.log_file = Path(log_file) if log_file else None
        command = serve_command(
            service,
            port=port,
            host=host,
            state_dir=self.state_dir,
            tracking_uri=tracking_uri,
            auth=auth,
        )
        if self.log_file is None:
            self.proc = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, env=env
            )
        else:
            with open(self.log_file, "ab") as out:
                self.proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        self.client = ServingClient(self.url, token=self.token)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout: float = 60.0, *, model: bool = True) -> None:
        """Wait until the service answers (and, with ``model``, has a model loaded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServingError(
                    f"service {self.service.name} exited with code "
                    f"{self.proc.returncode}; see {self.log_file or 'its log'}"
                )
            try:
                status = self.client.status()
                if status["workers_ready"] >= 1 and (status["ready"] or not model):
                    return
            except Exception:
                pass
            time.sleep(0.1)
        raise ServingError(
            f"service {self.service.name} not ready within {timeout} s at "
            f"{self.url}; see {self.log_file or 'its log'}"
        )

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (graceful drain), then SIGKILL after ``timeout``; returns the exit code."""
        code = stop_child(self.proc, timeout)
        self.client.close()
        return code
