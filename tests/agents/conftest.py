"""Fixtures of the agent tests: a real state store per test, and a way to run coroutines."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from scanflow.store import Store


@pytest.fixture
def store(tmp_path: Path):
    """A real SQLite state store in a fresh folder."""
    s = Store.for_state_dir(tmp_path / ".scanflow")
    yield s
    s.close()


def run(coro: Coroutine[Any, Any, Any], timeout: float = 60.0) -> Any:
    """Run ``coro`` to its end in a fresh event loop."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def until(condition: Callable[[], Any], timeout: float = 30.0, what: str = "") -> Any:
    """Wait (in the loop) until ``condition()`` is truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        value = condition()
        if value:
            return value
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")


class AgentProcess:
    """``scanflow agents up NAME`` in a child process, stopped by its PID."""

    def __init__(self, app_dir: Path, name: str, log: Path, *extra: str) -> None:
        import subprocess
        import sys

        self.app_dir, self.name, self.log = app_dir, name, log
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "scanflow.cli.main",
                    "--app",
                    str(app_dir),
                    "agents",
                    "up",
                    name,
                    *extra,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout: float = 60.0) -> str:
        """The agent's URL once it answers ``/health``."""
        import time

        import httpx

        from scanflow.agents.state import endpoint

        store = Store.for_state_dir(self.app_dir / ".scanflow")
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise AssertionError(f"agent {self.name} exited: {self.log.read_text()}")
                ep = endpoint(store, self.name)
                if ep is not None and ep.pid == self.pid and ep.url:
                    try:
                        if httpx.get(f"{ep.url}/health", timeout=2).status_code == 200:
                            return ep.url
                    except httpx.HTTPError:
                        pass
                time.sleep(0.05)
        finally:
            store.close()
        raise AssertionError(f"agent {self.name} not ready in {timeout}s: {self.log.read_text()}")

    def kill(self) -> None:
        """SIGKILL (a crash)."""
        self.proc.kill()
        self.proc.wait(30)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then SIGKILL after ``timeout``."""
        import subprocess

        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode
