"""``scanflow schedule ...`` and ``scanflow up`` (scheduler and control server), each
command in its own process against a real application folder."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import wait_for, write_files

from schedules.conftest import STEPS, app_yaml

SCHEDULES = """
- name: hourly
  workflow: quick
  cron: "0 * * * *"
  parameters: {n: 4}
- name: on-data
  workflow: quick
  watch: incoming
"""


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    root = tmp_path / "app"
    write_files(root, {"scanflow.yaml": app_yaml(SCHEDULES), "steps.py": STEPS})
    (root / "incoming").mkdir()
    return root


def cli(*args: str) -> tuple[int, str, str]:
    """The CLI in this process, on a wide console; returns (exit code, stdout, stderr)."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    from scanflow.cli import output
    from scanflow.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    width, output.console.width = output.console.width, 200
    try:
        with redirect_stdout(out), redirect_stderr(err):
            code = main(list(args))
    finally:
        output.console.width = width
    return code, out.getvalue(), err.getvalue()


def _listed(app_dir: Path) -> dict[str, dict]:
    code, out, err = cli("--app", str(app_dir), "schedule", "list", "-o", "json")
    assert code == 0, err
    return {s["name"]: s for s in json.loads(out)}


def test_list_pause_resume_trigger_and_history(app_dir: Path) -> None:
    code, out, _ = cli("--app", str(app_dir), "validate", "-o", "json")
    assert code == 0 and json.loads(out)["schedules"] == ["hourly", "on-data"]
    listed = _listed(app_dir)
    assert listed["hourly"]["trigger"] == "cron 0 * * * * (UTC)"
    assert listed["hourly"]["next_due"] == math.ceil((time.time() + 1) / 3600) * 3600
    assert listed["on-data"]["trigger"] == "new files incoming/*"
    assert listed["on-data"]["next_due"] is None and listed["hourly"]["last"] is None

    code, out, err = cli("--app", str(app_dir), "schedule", "trigger", "hourly", "--no-tracking")
    assert code == 0, err
    assert "schedule hourly started run quick-" in out and "succeeded" in out
    last = _listed(app_dir)["hourly"]["last"]
    assert last["status"] == "started" and last["kind"] == "manual"
    assert last["run_id"] in out

    assert cli("--app", str(app_dir), "schedule", "pause", "hourly")[0] == 0
    listed = _listed(app_dir)
    assert listed["hourly"]["paused"] is True and listed["hourly"]["next_due"] is None
    code, table, _ = cli("--app", str(app_dir), "schedule", "list")
    assert "paused" in table and last["run_id"] in table
    assert cli("--app", str(app_dir), "schedule", "resume", "hourly")[0] == 0
    assert _listed(app_dir)["hourly"]["paused"] is False

    code, out, _ = cli("--app", str(app_dir), "schedule", "history", "hourly", "-o", "json")
    [firing] = json.loads(out)
    assert firing["run_id"] == last["run_id"]
    assert firing["cause"] == {"by": "scanflow schedule trigger"}


def test_an_unknown_schedule_is_a_clear_error(app_dir: Path) -> None:
    for command in ("pause", "resume", "trigger", "history"):
        code, _, err = cli("--app", str(app_dir), "schedule", command, "hourli")
        assert code != 0
        assert "no schedule 'hourli'" in err and "known: hourly, on-data" in err


def _up(app_dir: Path, out: Path, *args: str) -> subprocess.Popen:
    command = [str(Path(sys.executable).parent / "scanflow"), "--app", str(app_dir), "up", *args]
    with out.open("wb") as sink:
        return subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen) -> int:
    os.kill(proc.pid, signal.SIGTERM)
    return proc.wait(60)


@pytest.mark.slow  # starts scanflow up and the control server as processes
def test_up_starts_the_control_server_and_the_scheduler(tmp_path: Path) -> None:
    from scanflow.schedules.records import ScheduleBook
    from scanflow.store import Store

    root = tmp_path / "app"
    every = "- name: often\n  workflow: quick\n  interval: 2s\n"
    write_files(root, {"scanflow.yaml": app_yaml(every), "steps.py": STEPS})
    out = tmp_path / "up.log"
    proc = _up(root, out, "--no-tracking")
    try:
        url = wait_for(
            lambda: next(
                (w for w in out.read_text().split() if w.startswith("http://127.0.0.1:")), None
            ),
            120,
            "the control server's URL",
        )
        assert httpx.get(f"{url}/api/health", timeout=10).status_code == 200
        store = Store.for_state_dir(root / ".scanflow")
        book = ScheduleBook(store)
        started = wait_for(
            lambda: [f for f in book.firings("often") if f.status == "started"],
            120,
            "a scheduled run",
        )
        wait_for(lambda: store.get_run(started[-1].run_id).status == "succeeded", 120, "the run")
        assert "scheduler often" in out.read_text()
    finally:
        code = _stop(proc)
    assert code == 0, out.read_text()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/api/health", timeout=5)  # the server stopped with it


@pytest.mark.slow
def test_up_without_server_runs_only_the_scheduler(tmp_path: Path) -> None:
    root = tmp_path / "app"
    every = "- name: often\n  workflow: quick\n  interval: 3600s\n"
    write_files(root, {"scanflow.yaml": app_yaml(every), "steps.py": STEPS})
    out = tmp_path / "up.log"
    proc = _up(root, out, "--no-server", "--no-tracking")
    try:
        wait_for(lambda: "scheduler often" in out.read_text(), 120, "the scheduler")
    finally:
        assert _stop(proc) == 0
    assert "control server http" not in out.read_text()
    assert not (root / ".scanflow" / "server").exists()  # no server was started


def test_up_with_nothing_to_start_says_so(tmp_path: Path) -> None:
    root = tmp_path / "app"
    write_files(root, {"scanflow.yaml": "name: empty\n"})
    code, _, err = cli("--app", str(root), "up", "--no-server")
    assert code != 0
    assert "nothing to start" in err and "--no-server" in err
