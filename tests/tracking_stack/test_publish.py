"""Team and central trackers: publish and pull model versions and application specs.

The team's tracker is a real stack (MLflow server on PostgreSQL, artifacts in SeaweedFS);
the central tracker and a second team are embedded MLflow stores in their own folders.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from scanflow.errors import TrackingError
from scanflow.tracking.publish import DigestMismatchError, copy_model_version, tree_digest
from scanflow.tracking.stack import TrackerStack
from scanflow.tracking.stack.seaweedfs import s3_client

from .conftest import log_and_register, predict_with, run_cli, sqlite_tracker

pytestmark = pytest.mark.slow  # starts PostgreSQL, SeaweedFS and an MLflow server

SPEC = """
name: vision
team: vision-team
tracker:
  managed: true
trackers:
- name: central
  uri: {central}
workflows:
- name: train
  executors:
  - name: fit
    function: steps:fit
  - name: crash
    function: steps:crash
    depends_on: [fit]
- name: upload
  executors:
  - name: upload
    function: steps:upload
"""
STEPS = """
from scanflow import tracking

def fit():
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    for i in range(1000):
        tracking.log_metric("loss", 1.0 / (i + 1), step=i)
    tracking.log_param("epochs", 1000)
    X, y = load_digits(return_X_y=True)
    model = LogisticRegression(max_iter=200, random_state=0).fit(X[:300], y[:300])
    tracking.log_model(model)
    tracking.register_model("from-workflow", alias="newest")

def upload():
    from sklearn.dummy import DummyClassifier

    tracking.log_model(DummyClassifier().fit([[0], [1]], [0, 1]))
    tracking.register_model("while-s3-down")

def crash():
    for i in range(500):
        tracking.log_metric("partial", float(i), step=i)
    raise RuntimeError("the step fails after logging")
"""


@pytest.fixture(scope="module")
def world(make_app, trained_model, tmp_path_factory):
    """The team stack with model 'clf' v1, a central tracker and another team's tracker.

    The stack is stopped by ``make_app``'s clean-up even when this set-up fails half-way.
    """
    others = tmp_path_factory.mktemp("others")
    central = sqlite_tracker(others / "central")
    project = make_app(SPEC.format(central=central), "team")
    (project.base_dir / "steps.py").write_text(textwrap.dedent(STEPS))
    stack = TrackerStack(project)
    uri = stack.up().status.uri
    run_id, _ = log_and_register(
        uri,
        "clf",
        trained_model[0],
        team="vision-team",
        params={"C": "1.0"},
        metrics={"accuracy": 0.91},
    )
    yield {
        "stack": stack,
        "uri": uri,
        "central": central,
        "run_id": run_id,
        "team_b": sqlite_tracker(others / "team-b"),
        "app_dir": project.base_dir,
    }
    stack.down()


def versions(uri: str, name: str) -> list[str]:
    found = MlflowClient(uri).search_model_versions(f"name='{name}'")
    return sorted(str(v.version) for v in found)


def test_publish_copies_files_params_metrics_and_lineage(world, trained_model, tmp_path) -> None:
    code, out = run_cli(world["app_dir"], "publish", "models:/clf/1", "--to", "central")
    assert code == 0, out
    assert "copied models:/clf/1" in out and "as version 1" in out
    central = MlflowClient(world["central"])
    copy = central.get_model_version("clf", "1")
    assert copy.tags["scanflow.source.team"] == "vision-team"
    assert copy.tags["scanflow.source.run_id"] == world["run_id"]
    assert copy.tags["scanflow.source.model"] == "clf/1"
    assert copy.tags["scanflow.source.tracker"] == world["uri"]
    run = central.get_run(copy.run_id)
    assert run.data.params == {"C": "1.0"} and run.data.metrics == {"accuracy": 0.91}
    files = Path(central.download_artifacts(copy.run_id, "model", str(tmp_path)))
    assert copy.tags["scanflow.digest"] == tree_digest(files)
    model, rows = trained_model
    assert predict_with(world["central"], "clf", "1", rows) == list(model.predict(rows))


def test_publish_twice_makes_one_copy(world) -> None:
    run_cli(world["app_dir"], "publish", "models:/clf/1", "--to", "central")
    code, out = run_cli(world["app_dir"], "publish", "models:/clf/1", "--to", world["central"])
    assert code == 0 and "already on" in out and "nothing copied" in out
    assert versions(world["central"], "clf") == ["1"]
    runs = MlflowClient(world["central"]).search_runs(
        [
            MlflowClient(world["central"])
            .get_experiment_by_name("scanflow-shared-models")
            .experiment_id
        ]
    )
    assert len(runs) == 1


def test_publishing_a_version_that_does_not_exist_is_refused(world) -> None:
    code, out = run_cli(world["app_dir"], "publish", "models:/clf/9", "--to", "central")
    assert code == 1
    assert "models:/clf/9 does not exist" in out and "versions of 'clf' there: 1" in out
    code, out = run_cli(world["app_dir"], "publish", "models:/ghost/1", "--to", "central")
    assert code == 1 and "no registered model 'ghost'" in out
    code, out = run_cli(world["app_dir"], "publish", "clf:1", "--to", "central")
    assert code == 1 and "models:/NAME/VERSION" in out
    code, out = run_cli(world["app_dir"], "publish", "models:/clf/1", "--to", "centrl")
    assert code == 1 and "declared: default, central" in out
    assert MlflowClient(world["central"]).get_registered_model("clf") is not None
    with pytest.raises(Exception, match="ghost"):
        MlflowClient(world["central"]).get_registered_model("ghost")


def test_aliases_move_only_when_asked(world, trained_model) -> None:
    from sklearn.linear_model import LogisticRegression

    central = MlflowClient(world["central"])
    central.set_registered_model_alias("clf", "champion", "1")
    _, rows = trained_model
    other = LogisticRegression(C=0.01, max_iter=300, random_state=0).fit(rows, list(range(10)))
    _, v2 = log_and_register(world["uri"], "clf", other, team="vision-team")
    run_cli(world["app_dir"], "publish", f"models:/clf/{v2}", "--to", "central")
    assert central.get_model_version_by_alias("clf", "champion").version == 1
    code, out = run_cli(
        world["app_dir"], "publish", f"models:/clf/{v2}", "--to", "central", "--alias", "champion"
    )
    assert code == 0 and "alias 'champion' -> version 2" in out
    assert central.get_model_version_by_alias("clf", "champion").version == 2
    assert versions(world["central"], "clf") == ["1", "2"]


def test_pull_registers_a_verified_copy_in_postgres_and_the_bucket(world, trained_model) -> None:
    model, rows = trained_model
    log_and_register(world["team_b"], "partner", model, team="team-b")
    copy_model_version(world["team_b"], world["central"], "partner", "1", team="team-b")
    code, out = run_cli(
        world["app_dir"], "pull", "models:/partner/1", "--from", "central", "--alias", "candidate"
    )
    assert code == 0, out
    stack = world["stack"]
    status, creds = stack.status(), stack.credentials()
    pulled = MlflowClient(world["uri"]).get_model_version_by_alias("partner", "candidate")
    assert pulled.tags["scanflow.source.team"] == "team-b"
    assert pulled.tags["scanflow.source.tracker"] == world["team_b"]
    assert pulled.tags["scanflow.copied_from"] == f"{world['central']} models:/partner/1"
    with stack.postgres().admin_connection(status.ports["postgres"], "mlflow") as conn:
        rows_pg = conn.execute(
            "SELECT v.version, t.value FROM model_versions v JOIN model_version_tags t "
            "ON t.name = v.name AND t.version = v.version "
            "WHERE v.name = 'partner' AND t.key = 'scanflow.digest'"
        ).fetchall()
    assert rows_pg == [(int(pulled.version), pulled.tags["scanflow.digest"])]
    bucket = s3_client(status.s3_endpoint, creds.s3_access_key, creds.s3_secret_key)
    keys = [o["Key"] for o in bucket.list_objects_v2(Bucket="mlflow")["Contents"]]
    assert any(pulled.run_id in k and k.endswith("model/MLmodel") for k in keys)
    assert predict_with(world["uri"], "partner", pulled.version, rows) == list(model.predict(rows))
    code, out = run_cli(world["app_dir"], "pull", "models:/partner/1", "--from", "central")
    assert code == 0 and "nothing copied" in out
    assert versions(world["uri"], "partner") == [str(pulled.version)]


def test_pull_refuses_a_digest_mismatch(world, trained_model) -> None:
    model, _ = trained_model
    log_and_register(world["team_b"], "tampered", model, team="team-b")
    copy_model_version(world["team_b"], world["central"], "tampered", "1")
    central = MlflowClient(world["central"])
    stored = central.get_model_version_download_uri("tampered", "1")
    target = Path(stored.removeprefix("file://")) / "MLmodel"
    target.write_text(target.read_text() + "\n# changed after publishing\n")
    code, out = run_cli(
        world["app_dir"], "pull", "models:/tampered/1", "--from", "central", "--alias", "champion"
    )
    assert code == 1
    assert "was refused" in out and "scanflow.digest" in out
    with pytest.raises(DigestMismatchError):
        copy_model_version(world["central"], world["uri"], "tampered", "1")
    assert versions(world["uri"], "tampered") == []


def test_s3_store_down_during_upload_fails_cleanly(world, trained_model) -> None:
    model, _ = trained_model
    log_and_register(world["central"], "late", model, team="central")
    stack = world["stack"]
    assert stack.stop_component("seaweedfs")
    shared = MlflowClient(world["uri"]).get_experiment_by_name("scanflow-shared-models")
    runs_before = len(MlflowClient(world["uri"]).search_runs([shared.experiment_id]))
    try:
        with pytest.raises(TrackingError, match="nothing was registered there"):
            copy_model_version(world["central"], world["uri"], "late", "1")
        client = MlflowClient(world["uri"])
        assert versions(world["uri"], "late") == []
        assert not client.search_registered_models("name = 'late'")
        assert len(client.search_runs([shared.experiment_id])) == runs_before
    finally:
        result = stack.up()
    assert result.started == ["seaweedfs"]
    copied = copy_model_version(world["central"], world["uri"], "late", "1")
    assert copied.created and versions(world["uri"], "late") == ["1"]


def test_workflow_steps_log_everything_and_the_spec_can_be_pulled(world, tmp_path) -> None:
    from scanflow.engines.local import LocalEngine
    from scanflow.spec import load_project

    project = load_project(world["app_dir"])
    sys.modules.pop("steps", None)
    run = LocalEngine(project).run("train")
    assert run.status == "failed" and "crash" in (run.error or "")
    client = MlflowClient(world["uri"])
    steps = {
        r.data.tags["scanflow.step"]: r
        for r in client.search_runs(
            [client.get_experiment_by_name("vision").experiment_id],
            f"tags.mlflow.parentRunId = '{run.mlflow_run_id}'",
        )
    }
    fit, crash = steps["fit"].info.run_id, steps["crash"].info.run_id
    history = client.get_metric_history(fit, "loss")
    assert [m.step for m in history] == list(range(1000))
    assert client.get_run(fit).data.params["epochs"] == "1000"
    assert len(client.get_metric_history(crash, "partial")) == 500
    registered = client.get_model_version_by_alias("from-workflow", "newest")
    assert registered.run_id == fit
    copied = copy_model_version(
        world["uri"], world["central"], "from-workflow", str(registered.version)
    )
    files = MlflowClient(world["central"]).get_model_version_download_uri(
        "from-workflow", copied.version
    )
    assert (Path(files.removeprefix("file://")) / "MLmodel").is_file()
    ok_spec = project.app.to_yaml()
    client.set_terminated(run.mlflow_run_id, "FINISHED")  # pull takes finished runs
    dest = tmp_path / "pulled"
    code, out = run_cli(
        world["app_dir"], "pull", "app:vision", "--from", world["uri"], "--dest", str(dest)
    )
    assert code == 0, out
    assert (dest / "scanflow.yaml").read_text() == ok_spec
    assert (dest / "steps.py").read_text() == textwrap.dedent(STEPS)  # through the S3 store
    assert "2 files" in out
    code, out = run_cli(world["app_dir"], "pull", "app:nobody", "--from", world["uri"])
    assert code == 1 and "no application 'nobody'" in out


def test_s3_store_down_while_a_step_uploads_a_model_registers_nothing(world) -> None:
    from scanflow.engines.local import LocalEngine
    from scanflow.spec import load_project

    stack = world["stack"]
    assert stack.stop_component("seaweedfs")
    try:
        sys.modules.pop("steps", None)
        project = load_project(world["app_dir"])
        run = LocalEngine(project).run("upload", use_cache=False)
        assert run.status == "failed"
        log = next(
            (world["app_dir"] / ".scanflow" / "runs" / run.id / "steps" / "upload").rglob("*.log")
        ).read_text()
        assert "TrackingError: uploading model 'model' to the tracker" in log, log[-2000:]
        assert "artifact store may be down" in log and "Nothing was registered" in log
        client = MlflowClient(world["uri"])
        assert versions(world["uri"], "while-s3-down") == []
        assert not client.search_registered_models("name = 'while-s3-down'")
    finally:
        assert stack.up().started == ["seaweedfs"]
