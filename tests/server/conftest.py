"""Fixtures of the server tests: three applications of two teams, a real server process."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from conftest import free_port, wait_for, write_files

from scanflow.api.tokens import Tokens
from scanflow.store import Store

from .apps import STEPS, pipeline


@dataclass
class Apps:
    """``vision`` and ``radio`` (team vision; radio's tracker never answers), ``audio``
    (team audio); tokens are kept in vision's store."""

    root: Path
    vision: Path
    audio: Path
    radio: Path
    tokens: Tokens

    def token(self, team: str = "vision", scope: str = "admin", **options) -> str:
        return self.tokens.create(team, scope, **options).token


def make_apps(root: Path) -> Apps:
    """The three applications' folders under ``root``, tokens in vision's store."""
    folders = {}
    for name, team, extra in [
        ("vision", "vision", ""),
        ("audio", "audio", ""),
        ("radio", "vision", f"tracker:\n  uri: http://127.0.0.1:{free_port()}\n"),
    ]:
        folders[name] = root / name
        write_files(
            folders[name], {"scanflow.yaml": pipeline(name, team) + extra, "steps.py": STEPS}
        )
    store = Store.for_state_dir(folders["vision"] / ".scanflow")
    return Apps(root, folders["vision"], folders["audio"], folders["radio"], Tokens(store))


@pytest.fixture
def apps(tmp_path: Path) -> Iterator[Apps]:
    made = make_apps(tmp_path)
    yield made
    made.tokens.store.close()


@dataclass
class Server:
    """A ``scanflow server`` process serving the three applications."""

    proc: subprocess.Popen
    url: str = ""
    output: list[str] = field(default_factory=list)

    def client(self, token: str | None = None, **options) -> httpx.Client:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60, **options)


def start_server(
    apps: Apps, include: list[Path] | None = None, wait_tracking: bool = True
) -> Server:
    """A server of ``vision`` and ``include`` (default: audio and radio); with
    ``wait_tracking``, returned once its MLflow stores are open."""
    command = [sys.executable, "-m", "scanflow.cli.main", "--app", str(apps.vision), "server"]
    command += ["--port", "0"]
    for folder in [apps.audio, apps.radio] if include is None else include:
        command += ["--include", str(folder)]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=apps.root
    )
    server = Server(proc)

    def read() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            server.output.append(line)

    threading.Thread(target=read, daemon=True).start()

    def address() -> str | None:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited: {''.join(server.output)}")
        found = [ln for ln in server.output if "listening on" in ln]
        return found[0].split("listening on ")[1].strip() if found else None

    server.url = wait_for(address, timeout=120, what="the server's address")
    if not wait_tracking:
        return server
    wait_for(
        lambda: httpx.get(f"{server.url}/api/health", timeout=30).json()["tracking_ready"],
        timeout=120,
        what="the server's health with its MLflow stores open",
    )
    return server


def stop_server(server: Server) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait()


@pytest.fixture
def server(apps: Apps) -> Iterator[Server]:
    server = start_server(apps)
    yield server
    stop_server(server)


def wait_run(client: httpx.Client, app: str, run_id: str, states: set[str]) -> dict:
    """The run's view once its status is one of ``states``."""

    def view() -> dict | None:
        data = client.get(f"/api/apps/{app}/runs/{run_id}").json()
        return data if data["status"] in states else None

    return wait_for(view, timeout=180, what=f"run {run_id} to be {states}")


def make_model(tracking_uri: str) -> None:
    """Model ``digits`` with three versions, each from a run with an accuracy."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    experiment = client.create_experiment("train")
    client.create_registered_model("digits")
    for accuracy in (0.81, 0.86, 0.9):
        run = client.create_run(experiment)
        client.log_metric(run.info.run_id, "accuracy", accuracy)
        client.create_model_version("digits", f"runs:/{run.info.run_id}/model", run.info.run_id)
    client.set_registered_model_alias("digits", "champion", "2")
