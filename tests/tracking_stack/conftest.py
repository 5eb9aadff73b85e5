"""Fixtures of the tracker-stack tests: app folders that PostgreSQL can enter, a stack, a model.

PostgreSQL refuses to run as root, so when the tests run as root its cluster runs as the
``postgres`` user; the app folders are made under /tmp with mode 0755 (pytest's own
temporary folders are 0700 and would keep that user out).
"""

from __future__ import annotations

import shutil
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from scanflow.spec import Project, load_project

MakeApp = Callable[..., Project]


@pytest.fixture(scope="module")
def make_app() -> Iterator[MakeApp]:
    """``make_app(spec_yaml)`` -> a Project in a fresh folder; folders removed afterwards."""
    folders: list[Path] = []

    def make(spec: str, name: str = "app") -> Project:
        root = Path(tempfile.mkdtemp(prefix=f"scanflow-{name}-"))
        root.chmod(0o755)
        folders.append(root)
        (root / "scanflow.yaml").write_text(textwrap.dedent(spec).lstrip())
        return load_project(root, check_files=False)

    yield make
    for folder in folders:
        _stop_leftovers(folder)
        shutil.rmtree(folder, ignore_errors=True)


def _stop_leftovers(folder: Path) -> None:
    """A failed test must not leave servers running: stop what the stack recorded."""
    from scanflow.tracking.stack.state import StackPaths, StackState

    paths = StackPaths.for_state_dir(folder / ".scanflow")
    if paths.state.exists() and StackState.load(paths.state).processes:
        from scanflow.tracking.stack import TrackerStack

        TrackerStack(load_project(folder, check_files=False)).down()


@pytest.fixture(scope="session")
def trained_model() -> tuple[Any, Any]:
    """One small scikit-learn classifier (digits, seeded) and a few rows to predict."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    X, y = load_digits(return_X_y=True)
    model = LogisticRegression(max_iter=300, random_state=0).fit(X[:600], y[:600])
    return model, X[600:610]


def log_and_register(
    uri: str,
    name: str,
    model: Any,
    *,
    experiment: str = "train",
    team: str | None = None,
    params: dict[str, str] | None = None,
    metrics: dict[str, float] | None = None,
) -> tuple[str, str]:
    """Log ``model`` as MLflow model files in a new run on ``uri`` and register it.

    Returns ``(run_id, version)``. Uses MlflowClient only, so no global MLflow state leaks.
    """
    import mlflow.sklearn
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    location = None
    if uri.startswith("sqlite:///"):
        location = (Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts").as_uri()
    experiment_id = (
        found.experiment_id
        if found
        else client.create_experiment(experiment, artifact_location=location)
    )
    tags = {"scanflow.team": team} if team else {}
    run = client.create_run(experiment_id, tags=tags)
    run_id = run.info.run_id
    for key, value in (params or {}).items():
        client.log_param(run_id, key, value)
    for key, value in (metrics or {}).items():
        client.log_metric(run_id, key, value)
    with tempfile.TemporaryDirectory() as tmp:
        mlflow.sklearn.save_model(model, f"{tmp}/model")
        client.log_artifacts(run_id, f"{tmp}/model", "model")
    client.set_terminated(run_id)
    try:
        client.create_registered_model(name)
    except Exception:  # noqa: BLE001 - already registered
        pass
    version = client.create_model_version(name, f"{run.info.artifact_uri}/model", run_id=run_id)
    return run_id, str(version.version)


def predict_with(uri: str, name: str, version: str, rows: Any) -> list[int]:
    """Predictions of registered model ``name``/``version`` of tracker ``uri``.

    The files are fetched with explicit URIs (no global MLflow tracking URI involved).
    """
    import mlflow.artifacts
    import mlflow.pyfunc
    from mlflow.tracking import MlflowClient

    location = MlflowClient(uri).get_model_version_download_uri(name, version)
    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=location, dst_path=tmp, tracking_uri=uri
        )
        return [int(p) for p in mlflow.pyfunc.load_model(local).predict(rows)]


def sqlite_tracker(folder: Path) -> str:
    """A tracking URI of an embedded store in ``folder`` (as another team's or central)."""
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'mlflow.db'}"


def run_cli(app_dir: Path, *args: str) -> tuple[int, str]:
    """``scanflow --app APP_DIR tracker ARGS`` in this process: (exit code, output).

    The output (stdout and stderr) comes back with its whitespace collapsed, so that the
    console's line wrapping does not matter.
    """
    import io
    from contextlib import redirect_stderr, redirect_stdout

    from scanflow.cli.main import main

    buffer = io.StringIO()  # the consoles write to sys.stdout/sys.stderr
    with redirect_stdout(buffer), redirect_stderr(buffer):
        code = main(["--app", str(app_dir), "tracker", *args])
    return code, " ".join(buffer.getvalue().split())
