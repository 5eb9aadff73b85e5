"""Workflow runs in MLflow: a tagged parent run, nested step runs, and step code logging."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from scanflow.engines.local import LocalEngine
from scanflow.tracking.config import embedded_tracking_uri

STEPS = """
from pathlib import Path
from scanflow import tracking

def prepare(size, table):
    Path(table).write_text("x" * size)
    tracking.log_metric("size", size)

def fit(table, model, lr=0.1):
    tracking.log_metrics({"loss": 1.0 - lr, "rows": len(Path(table).read_text())})
    tracking.set_tag("stage", "fit")
    Path(model).write_text("weights")
"""

SPEC = """
name: tracked
team: vision
workflows:
- name: train
  parameters: {size: 7}
  executors:
  - name: prepare
    function: steps:prepare
    outputs: [table]
  - name: fit
    function: steps:fit
    parameters: {lr: 0.25}
    inputs: [prepare.table]
    outputs: [model]
"""


@pytest.fixture(scope="module")
def tracked_run(tmp_path_factory):
    from conftest import write_files

    from scanflow.spec import load_project

    root = tmp_path_factory.mktemp("tracked")
    write_files(root, {"scanflow.yaml": SPEC, "steps.py": STEPS})
    project = load_project(root)
    engine = LocalEngine(project)
    run = engine.run("train")
    assert run.status == "succeeded", run.error
    from mlflow.tracking import MlflowClient

    return project, engine, run, MlflowClient(embedded_tracking_uri(root))


def test_parent_run_is_tagged(tracked_run) -> None:
    _, _, run, client = tracked_run
    parent = client.get_run(run.mlflow_run_id)
    assert parent.info.status == "FINISHED" and parent.info.run_name == run.id
    assert parent.data.tags["scanflow.app"] == "tracked"
    assert parent.data.tags["scanflow.team"] == "vision"
    assert parent.data.tags["scanflow.workflow"] == "train"
    assert parent.data.tags["scanflow.run_id"] == run.id
    assert parent.data.params == {"size": "7"}
    artifacts = [a.path for a in client.list_artifacts(run.mlflow_run_id)]
    assert "scanflow.yaml" in artifacts


def test_steps_are_nested_runs_with_params_metrics_and_outputs(tracked_run) -> None:
    _, _, run, client = tracked_run
    experiment = client.get_experiment_by_name("tracked")
    children = client.search_runs(
        [experiment.experiment_id], f"tags.mlflow.parentRunId = '{run.mlflow_run_id}'"
    )
    by_step = {c.data.tags["scanflow.step"]: c for c in children}
    assert set(by_step) == {"prepare", "fit"}
    fit = by_step["fit"]
    assert fit.info.status == "FINISHED"
    assert fit.data.params == {"size": "7", "lr": "0.25"}
    assert fit.data.metrics == {"loss": 0.75, "rows": 7.0}
    assert fit.data.tags["stage"] == "fit"
    assert by_step["prepare"].data.metrics == {"size": 7.0}
    outputs = [a.path for a in client.list_artifacts(fit.info.run_id, "outputs")]
    assert outputs == ["outputs/model"]


def test_mlflow_cli_reads_the_same_store(tracked_run) -> None:
    project, _, run, _ = tracked_run
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlflow",
            "runs",
            "list",
            "--experiment-id",
            tracked_run[3].get_experiment_by_name("tracked").experiment_id,
        ],
        env={"MLFLOW_TRACKING_URI": embedded_tracking_uri(project.base_dir), "PATH": "/usr/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert run.id in done.stdout


OPEN_STORE = """
import sys, time
from pathlib import Path
from scanflow.tracking.config import mlflow_client

go = Path(sys.argv[2])
deadline = time.monotonic() + 120
while not go.exists() and time.monotonic() < deadline:  # start together
    time.sleep(0.01)
client = mlflow_client(sys.argv[1])
client.search_experiments()
print(len(client.search_registered_models()))
"""


def test_a_new_sqlite_store_opened_by_several_processes_at_once(tmp_path) -> None:
    """MLflow migrates a new SQLite store on first use; racing migrations must not clash."""
    uri = f"sqlite:///{tmp_path / 'shared' / 'mlflow.db'}"
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_STORE, uri, str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    go.touch()
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [err[-800:] for _, err in results]
    assert [out.strip() for out, _ in results] == ["0"] * 4


# -- log_model ----------------------------------------------------------------------------
class ScaledByHand:
    """A model type defined here: skops does not know it, so it is not trusted by default."""

    def __init__(self) -> None:
        self.factor = 2.0

    def predict(self, X):
        return X[:, 0] * self.factor


@pytest.fixture
def step_run(tmp_path, monkeypatch):
    """An MLflow run in a fresh embedded store, attached as a step's run is (environment)."""
    from mlflow.tracking import MlflowClient

    from scanflow.tracking import step

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("models", (tmp_path / "artifacts").as_uri())
    run_id = client.create_run(experiment).info.run_id
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_RUN_ID", run_id)
    monkeypatch.setattr(step, "_state", {})
    return client, run_id


@pytest.mark.parametrize("kind", ["GradientBoostingClassifier", "RandomForestClassifier"])
def test_tree_models_are_logged_loaded_and_predict(step_run, kind) -> None:
    import mlflow.sklearn
    import sklearn.ensemble
    from sklearn.datasets import load_iris

    from scanflow import tracking

    X, y = load_iris(return_X_y=True)
    model = getattr(sklearn.ensemble, kind)(n_estimators=5, random_state=0).fit(X, y)
    uri = tracking.log_model(model)
    loaded = mlflow.sklearn.load_model(uri)
    assert type(loaded).__name__ == kind
    assert loaded.predict(X).tolist() == model.predict(X).tolist()
    assert (loaded.predict(X) == y).mean() > 0.9


def test_an_untrusted_type_is_named_with_how_to_trust_it(step_run) -> None:
    import numpy as np

    from scanflow import tracking
    from scanflow.errors import TrackingError

    with pytest.raises(TrackingError) as caught:
        tracking.log_model(ScaledByHand(), flavor="sklearn")
    message = str(caught.value)
    assert "skops does not trust" in message and "ScaledByHand" in message
    assert "skops_trusted_types=" in message and "store" not in message
    trusted = [f"{__name__}.ScaledByHand"]
    uri = tracking.log_model(ScaledByHand(), flavor="sklearn", skops_trusted_types=trusted)
    import mlflow.sklearn

    assert mlflow.sklearn.load_model(uri).predict(np.array([[3.0]])).tolist() == [6.0]


def test_a_refused_option_is_not_blamed_on_the_store(step_run) -> None:
    from sklearn.linear_model import LogisticRegression

    from scanflow import tracking
    from scanflow.errors import TrackingError

    model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    with pytest.raises(TrackingError) as caught:
        tracking.log_model(model, serialization_format="nonsense")
    message = str(caught.value)
    assert message.startswith("logging model 'model' failed") and "nonsense" in message
    assert "may be down" not in message and "retries" not in message


def test_an_unreachable_store_is_named(tmp_path, monkeypatch) -> None:
    from conftest import free_port
    from sklearn.linear_model import LogisticRegression

    from scanflow import tracking
    from scanflow.errors import TrackingError
    from scanflow.tracking import step

    monkeypatch.setattr(step, "_state", {})
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("MLFLOW_RUN_ID", "0" * 32)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    with pytest.raises(TrackingError, match="its artifact store may be down"):
        tracking.log_model(model)


# -- retry settings -----------------------------------------------------------------------
RETRY_KEYS = ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")


def test_retry_settings_hold_inside_blocks_only(monkeypatch) -> None:
    import os
    import threading

    from scanflow.tracking.retries import http_retries

    for key in RETRY_KEYS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "7")  # the user's: kept
    before = dict(os.environ)
    settings = {**dict.fromkeys(RETRY_KEYS, "2"), "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}
    inner_entered, outer_left = threading.Event(), threading.Event()
    seen: dict[str, str | None] = {}

    def other_block() -> None:
        with http_retries(settings):
            inner_entered.set()
            outer_left.wait(60)
            seen.update({k: os.environ.get(k) for k in settings})

    with http_retries(settings):
        assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "2"
        assert os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] == "7"
        thread = threading.Thread(target=other_block)
        thread.start()
        assert inner_entered.wait(60)
    outer_left.set()
    thread.join(60)
    assert seen["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "2"  # still held by the other block
    assert dict(os.environ) == before


def test_copying_a_model_leaves_the_environment_unchanged(tmp_path) -> None:
    import os

    from sklearn.linear_model import LogisticRegression
    from tracking_stack.conftest import log_and_register

    from scanflow.errors import TrackingError
    from scanflow.tracking.publish import copy_model_version

    source, destination = (f"sqlite:///{tmp_path / n / 'mlflow.db'}" for n in ("a", "b"))
    for uri in (source, destination):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir()
    model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    log_and_register(source, "clf", model)
    before = dict(os.environ)
    assert copy_model_version(source, destination, "clf", "1").created
    with pytest.raises(TrackingError, match="does not exist"):
        copy_model_version(source, destination, "clf", "9")
    assert dict(os.environ) == before


def test_a_workflow_run_leaves_the_environment_unchanged(tracked_run) -> None:
    import os

    assert not [k for k in os.environ if k.startswith("MLFLOW_HTTP_REQUEST")]
