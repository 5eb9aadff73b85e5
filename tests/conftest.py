"""Shared fixtures: throw-away application folders and the helpers to fill them."""

from __future__ import annotations

import socket
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from scanflow.spec import Project, load_project

# k8s_cluster, argo, argo_namespace, postgres_server: once per session, for tests in any folder
pytest_plugins = ["k8s.fixtures", "postgres_support"]


# Under pytest-xdist (make test runs `-n 2`), a test file runs in one worker, and the tests
# that share one resource of the machine run in one worker, first: the test cluster with its
# Argo controller (one per machine), and the image builder's store and registry.
SHARED_RESOURCES = {"k8s": ("tests/k8s/", "[kubernetes"), "images": ("tests/build/",)}


def shared_resource(nodeid: str) -> str | None:
    """The shared resource a test needs, by its node id (None: it can run anywhere)."""
    for group, marks in SHARED_RESOURCES.items():
        if any(mark in nodeid for mark in marks):
            return group
    return None


def pytest_configure(config: pytest.Config) -> None:
    import signal

    # a pytest-xdist worker may start with SIGINT ignored, and child processes inherit that:
    # the tests that stop a command with Ctrl-C (SIGINT) need it handled as usual
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # the long chains of one resource start first, so the other worker takes the rest
    items.sort(key=lambda item: shared_resource(item.nodeid) is None)


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    from xdist.scheduler import LoadScopeScheduling

    class SharedResourceScheduling(LoadScopeScheduling):
        """Each test file one unit of work (its module fixtures are made once), and the
        tests of one shared resource one unit."""

        def _split_scope(self, nodeid: str) -> str:
            return shared_resource(nodeid) or nodeid.split("::")[0]

    return SharedResourceScheduling(config, log)


def write_files(root: Path, files: dict[str, str]) -> None:
    """Write ``{relative path: text}`` under ``root`` (text is dedented)."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[..., Project]:
    """``make_project(yaml, {file: text})`` writes an app folder and loads it."""

    def make(spec: str, files: dict[str, str] | None = None, name: str = "app") -> Project:
        root = tmp_path / name
        root.mkdir(exist_ok=True)
        write_files(root, {"scanflow.yaml": spec, **(files or {})})
        return load_project(root)

    return make


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory):
    monkeypatch.delenv("SCANFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    monkeypatch.delenv("SCANFLOW_STORE_URI", raising=False)
    monkeypatch.setenv("SCANFLOW_ENV_CACHE", str(tmp_path_factory.getbasetemp() / "envs"))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_service(service, state_dir: Path, tracking_uri: str, **options):
    """A ``ServiceProcess`` serving ``service`` on a free port, its state and its log
    (``server.log``) in ``state_dir``; the caller waits for it and stops it."""
    from scanflow.serving.process import ServiceProcess

    return ServiceProcess(
        service,
        port=free_port(),
        state_dir=state_dir,
        tracking_uri=tracking_uri,
        log_file=Path(state_dir) / "server.log",
        **options,
    )


def wait_for(
    condition: Callable[[], object],
    timeout: float = 180.0,
    what: str = "condition",
    interval: float = 0.05,
):
    """Poll ``condition`` until it returns something truthy (returned); fail after ``timeout`` s.

    The one poll-until helper of the tests: import it from here.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
