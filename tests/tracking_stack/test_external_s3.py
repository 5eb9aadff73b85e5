"""A managed stack whose artifacts go to an S3 endpoint it did not start (``s3_endpoint``).

The "external" S3 store is a separate SeaweedFS that this module starts on its own ports
with its own keys, standing in for a team's existing S3 service; the stack only knows its
URL (from the spec) and its keys (from the environment).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from scanflow.errors import TrackingError
from scanflow.tracking.stack import TrackerStack
from scanflow.tracking.stack.credentials import Credentials
from scanflow.tracking.stack.ports import free_ports, port_free
from scanflow.tracking.stack.seaweedfs import SeaweedStore, WeedPorts, s3_client, stop_server

from .conftest import log_and_register, predict_with, run_cli

pytestmark = pytest.mark.slow  # starts SeaweedFS, PostgreSQL and an MLflow server

SPEC = """
name: vision
team: vision-team
tracker:
  managed: true
  s3_endpoint: {endpoint}
  s3_bucket: team-artifacts
"""


@pytest.fixture(scope="module")
def external_s3(tmp_path_factory):
    """An S3 store the stack did not start: its endpoint and keys."""
    root = tmp_path_factory.mktemp("external-s3")
    keys = Credentials.generate()
    while True:
        chosen = free_ports(4)
        if all(port_free(p + 10000) for p in chosen):
            break
    ports = WeedPorts(*chosen)
    store = SeaweedStore(root / "data", root / "weed.log", keys)
    record = store.start(ports)
    try:
        store.wait_ready(record, ports, "team-artifacts", timeout=120)
        yield {"endpoint": f"http://127.0.0.1:{ports.s3}", "keys": keys}
    finally:
        stop_server(record, ports)


@pytest.fixture(scope="module")
def app_dir(external_s3):
    root = Path(tempfile.mkdtemp(prefix="scanflow-ext-s3-"))
    root.chmod(0o755)  # PostgreSQL's user (when tests run as root) must enter it
    (root / "scanflow.yaml").write_text(SPEC.format(endpoint=external_s3["endpoint"]))
    yield root
    from scanflow.spec import load_project

    TrackerStack(load_project(root, check_files=False)).down()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def s3_keys(monkeypatch, external_s3):
    """The external store's keys in the environment, as its users export them."""
    keys = external_s3["keys"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", keys.s3_access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", keys.s3_secret_key)
    return keys


def test_up_without_keys_names_the_variables(app_dir, monkeypatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    code, out = run_cli(app_dir, "up")
    assert code == 1
    assert "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not both set" in out
    assert "Traceback" not in out


def test_up_with_wrong_keys_is_refused_and_starts_nothing(
    app_dir, external_s3, monkeypatch
) -> None:
    wrong = "not-the-secret-" + "x" * 20
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", external_s3["keys"].s3_access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", wrong)
    code, out = run_cli(app_dir, "up", "--timeout", "120")
    assert code == 1
    assert f"S3 store {external_s3['endpoint']} refused bucket 'team-artifacts'" in out
    assert wrong not in out
    from scanflow.spec import load_project

    assert TrackerStack(load_project(app_dir, check_files=False)).status().down


def test_stack_stores_artifacts_in_the_external_endpoint(
    app_dir, external_s3, s3_keys, trained_model, monkeypatch
) -> None:
    code, out = run_cli(app_dir, "up", "--timeout", "180")
    assert code == 0, out
    assert "seaweedfs" not in out, "no S3 store of its own"
    assert s3_keys.s3_secret_key not in out and s3_keys.s3_access_key not in out
    from scanflow.spec import load_project

    stack = TrackerStack(load_project(app_dir, check_files=False))
    status = stack.status()
    assert status.up and set(status.components) == {"postgres", "mlflow"}
    assert status.s3_endpoint == external_s3["endpoint"] and status.bucket == "team-artifacts"
    code, shown = run_cli(app_dir, "status", "-o", "json")
    assert s3_keys.s3_secret_key not in shown
    assert stack.credentials().s3_secret_key != s3_keys.s3_secret_key
    # clients need no S3 keys: the server holds them
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    run_id, version = log_and_register(status.uri, "ext", trained_model[0], team="vision")
    bucket = s3_client(external_s3["endpoint"], s3_keys.s3_access_key, s3_keys.s3_secret_key)
    keys = [o["Key"] for o in bucket.list_objects_v2(Bucket="team-artifacts")["Contents"]]
    assert any(run_id in key and key.endswith("model/MLmodel") for key in keys), keys
    model, rows = trained_model
    assert predict_with(status.uri, "ext", version, rows) == list(model.predict(rows))
    assert sorted(r.name for r in stack.down()) == ["mlflow", "postgres"]
    with pytest.raises(TrackingError, match="AWS_ACCESS_KEY_ID"):
        stack.up()
