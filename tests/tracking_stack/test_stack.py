"""The tracker stack: up, status, down, restart, credentials, ports, and what it stores where."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from scanflow.errors import TrackingError
from scanflow.tracking.config import tracking_uri
from scanflow.tracking.stack import TrackerStack
from scanflow.tracking.stack.postgres import PostgresCluster
from scanflow.tracking.stack.seaweedfs import s3_client

from .conftest import log_and_register, predict_with, run_cli

pytestmark = pytest.mark.slow  # starts PostgreSQL, SeaweedFS and an MLflow server

SPEC = """
name: vision
team: vision-team
tracker:
  managed: true
"""
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stack(make_app):
    stack = TrackerStack(make_app(SPEC, "stack"))
    result = stack.up()
    assert not result.already_up and sorted(result.started) == ["mlflow", "postgres", "seaweedfs"]
    yield stack
    stack.down()


def listening_addresses(pid: int) -> set[str]:
    process = psutil.Process(pid)
    found = set()
    for proc in [process, *process.children(recursive=True)]:
        for conn in proc.net_connections(kind="inet"):
            if conn.status == psutil.CONN_LISTEN:
                found.add(conn.laddr.ip)
    return found


def test_up_serves_mlflow_on_postgres_and_s3_bound_to_loopback(stack) -> None:
    status = stack.status()
    assert status.up and status.uri == f"http://127.0.0.1:{status.ports['mlflow']}"
    assert status.memory["rss"] > 50 * 2**20
    for name, record in status.components.items():
        assert psutil.pid_exists(record.pid), name
        assert listening_addresses(record.pid) == {"127.0.0.1"}, name
    mlflow_proc = psutil.Process(status.components["mlflow"].pid)
    env = mlflow_proc.environ()
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    assert "--artifacts-destination" in mlflow_proc.cmdline()
    assert "s3://mlflow" in mlflow_proc.cmdline()
    assert not mlflow_proc.children(), "MLflow runs as a single process"


def listener(port: int) -> tuple[int, float]:
    """The process that listens on ``port`` of 127.0.0.1, seen by the OS: (pid, start time)."""
    for conn in psutil.net_connections(kind="inet"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
            return conn.pid, psutil.Process(conn.pid).create_time()
    raise AssertionError(f"nothing listens on port {port}")


def mlflow_answers(uri: str) -> bool:
    from mlflow.tracking import MlflowClient

    return MlflowClient(uri).get_experiment_by_name("Default") is not None


def test_managed_tracker_resolves_to_the_running_stack(stack) -> None:
    project = stack.project
    uri = tracking_uri(project.app, project.base_dir)
    port = int(uri.rsplit(":", 1)[1])
    assert mlflow_answers(uri)
    assert listener(port)[0] == stack.status().components["mlflow"].pid


def test_up_twice_says_it_is_already_up(stack) -> None:
    ports = stack.status().ports
    before = {name: listener(ports[name]) for name in ("mlflow", "postgres", "s3")}
    code, out = run_cli(stack.project.base_dir, "up")
    assert code == 0
    assert f"already up at http://127.0.0.1:{ports['mlflow']}" in out
    assert {name: listener(ports[name]) for name in before} == before  # same processes


def test_status_reports_uri_and_pids_as_json(stack) -> None:
    import json

    code, out = run_cli(stack.project.base_dir, "status", "-o", "json")
    data = json.loads(out)
    assert code == 0 and data["state"] == "up" and mlflow_answers(data["uri"])
    assert data["uri"] == f"http://127.0.0.1:{data['ports']['mlflow']}"
    for name, port in (("mlflow", "mlflow"), ("postgres", "postgres"), ("seaweedfs", "s3")):
        assert data["components"][name]["pid"] == listener(data["ports"][port])[0], name
    mlflow_rss = psutil.Process(data["components"]["mlflow"]["pid"]).memory_info().rss
    assert data["resident_memory_bytes"] > mlflow_rss // 2  # the whole stack, children too


def test_credentials_are_private_and_never_printed(stack) -> None:
    creds = stack.credentials()
    path = stack.paths.credentials
    assert path.stat().st_mode & 0o777 == 0o600
    for private in ("pgpass", "s3-identities.json"):
        assert (stack.paths.root / private).stat().st_mode & 0o777 == 0o600
    outputs = [
        run_cli(stack.project.base_dir, "status")[1],
        run_cli(stack.project.base_dir, "up")[1],
        run_cli(stack.project.base_dir, "status", "-o", "json")[1],
    ]
    secrets = [
        creds.postgres_admin_password,
        creds.postgres_password,
        creds.s3_access_key,
        creds.s3_secret_key,
    ]
    for text in outputs:
        for secret in secrets:
            assert secret not in text
    assert creds.s3_access_key[:4] + "…" in outputs[0]
    mlflow_cmdline = " ".join(psutil.Process(stack.status().components["mlflow"].pid).cmdline())
    assert creds.postgres_password not in mlflow_cmdline


def test_credentials_differ_per_installation(stack, make_app) -> None:
    other = TrackerStack(make_app(SPEC, "other")).credentials()
    assert other.s3_secret_key != stack.credentials().s3_secret_key
    assert other.postgres_password != stack.credentials().postgres_password


def test_wrong_credentials_and_anonymous_requests_are_refused(stack) -> None:
    import psycopg
    from botocore import UNSIGNED
    from botocore.config import Config
    from botocore.exceptions import ClientError

    status, creds = stack.status(), stack.credentials()
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(
            host="127.0.0.1",
            port=status.ports["postgres"],
            user="mlflow",
            password="wrong",
            dbname="mlflow",
            connect_timeout=5,
        )
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(
            host="127.0.0.1",
            port=status.ports["postgres"],
            user="scanflow",
            password=creds.postgres_password,
            dbname="postgres",
            connect_timeout=5,
        )
    wrong = s3_client(status.s3_endpoint, creds.s3_access_key, "not-the-secret")
    with pytest.raises(ClientError, match="SignatureDoesNotMatch"):
        wrong.list_objects_v2(Bucket="mlflow")
    unknown = s3_client(status.s3_endpoint, "SFNOBODY", creds.s3_secret_key)
    with pytest.raises(ClientError, match="InvalidAccessKeyId|AccessDenied"):
        unknown.list_objects_v2(Bucket="mlflow")
    import boto3

    anonymous = boto3.client(
        "s3",
        endpoint_url=status.s3_endpoint,
        region_name="us-east-1",
        config=Config(signature_version=UNSIGNED),
    )
    with pytest.raises(ClientError, match="AccessDenied"):
        anonymous.list_objects_v2(Bucket="mlflow")
    with pytest.raises(ClientError, match="AccessDenied"):
        anonymous.put_object(Bucket="mlflow", Key="intruder.txt", Body=b"x")


def test_runs_and_models_land_in_postgres_and_the_bucket(stack, trained_model) -> None:
    from mlflow.tracking import MlflowClient

    status, creds = stack.status(), stack.credentials()
    assert "AWS_SECRET_ACCESS_KEY" not in os.environ  # clients need no S3 keys
    run_id, version = log_and_register(
        status.uri,
        "digits",
        trained_model[0],
        team="vision",
        params={"C": "1.0"},
        metrics={"accuracy": 0.93},
    )
    with stack.postgres().admin_connection(status.ports["postgres"], "mlflow") as conn:
        metric = conn.execute(
            "SELECT key, value FROM metrics WHERE run_uuid = %s", [run_id]
        ).fetchall()
        versions = conn.execute("SELECT name, version, run_id FROM model_versions").fetchall()
    assert metric == [("accuracy", 0.93)]
    assert ("digits", int(version), run_id) in versions
    objects = s3_client(status.s3_endpoint, creds.s3_access_key, creds.s3_secret_key)
    keys = [o["Key"] for o in objects.list_objects_v2(Bucket="mlflow")["Contents"]]
    assert any(run_id in key and key.endswith("model/MLmodel") for key in keys), keys
    client = MlflowClient(status.uri)
    assert client.get_model_version("digits", version).run_id == run_id


def test_port_taken_by_another_program_is_named(make_app) -> None:
    project = make_app(SPEC, "busy")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(TrackingError, match=f"port {port} on 127.0.0.1 is already taken"):
            TrackerStack(project).up(port=port)
        code, out = run_cli(project.base_dir, "up", "--port", str(port))
    assert code == 1 and f"port {port}" in out
    assert TrackerStack(project).status().down


def test_down_when_nothing_runs_says_so(make_app) -> None:
    project = make_app(SPEC, "idle")
    code, out = run_cli(project.base_dir, "down")
    assert code == 0 and "not running; nothing to stop" in out
    code, out = run_cli(project.base_dir, "status")
    assert code == 0 and "tracker stack down" in out


def test_postgres_missing_is_a_clear_error_and_starts_nothing(make_app, monkeypatch) -> None:
    project = make_app(SPEC, "nopg")
    monkeypatch.setenv("SCANFLOW_PG_BIN", "/nonexistent/postgresql/bin")
    with pytest.raises(
        TrackingError,
        match=r"initdb, postgres\) not found in /nonexistent.*"
        r"Debian package 'postgresql'",
    ):
        TrackerStack(project).up()
    assert TrackerStack(project).status().down


def test_postgres_failing_to_start_names_the_cause(make_app) -> None:
    project = make_app(SPEC, "badpg")
    stack = TrackerStack(project)
    cluster = PostgresCluster(
        stack.paths.postgres_data, stack.paths.log("postgres"), stack.credentials()
    )
    cluster.init()
    with open(stack.paths.postgres_data / "postgresql.conf", "a") as conf:
        conf.write("\nshared_buffers = 'a lot'\n")
    with pytest.raises(TrackingError, match=r"(?s)PostgreSQL failed to start.*shared_buffers"):
        stack.up(timeout=60)
    status = stack.status()
    assert status.down, "the S3 store started beside it was stopped again"


def test_install_script_reports_postgres_it_cannot_install(tmp_path) -> None:
    fake_bin = tmp_path / "bin"  # a fake apt-get (package installs cannot be made to fail)
    fake_bin.mkdir()
    (fake_bin / "apt-get").write_text(
        "#!/bin/sh\necho 'E: Unable to locate package postgresql' >&2\nexit 100\n"
    )
    (fake_bin / "apt-get").chmod(0o755)
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "install_postgres.sh")],
        capture_output=True,
        text=True,
        env={"PATH": f"{fake_bin}:/usr/bin:/bin", "SCANFLOW_PG_ROOT": str(tmp_path / "none")},
        timeout=60,
    )
    assert done.returncode == 1
    assert "PostgreSQL could not be installed" in done.stderr
    assert "Unable to locate package postgresql" in done.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the cluster to another user")
def test_folder_closed_to_the_postgres_user_is_named(make_app, tmp_path) -> None:
    closed = tmp_path / "closed"  # pytest's temporary folders are 0700 for root
    closed.mkdir()
    (closed / "scanflow.yaml").write_text(SPEC)
    from scanflow.spec import load_project

    stack = TrackerStack(load_project(closed, check_files=False))
    with pytest.raises(TrackingError, match=r"runs as user 'postgres'.*cannot enter .*chmod o\+x"):
        stack.up()
    assert stack.status().down


def test_down_stops_its_processes_only_and_up_keeps_data(stack, trained_model) -> None:
    from mlflow.tracking import MlflowClient

    before = stack.status()
    run_id, version = log_and_register(before.uri, "kept", trained_model[0])
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        code, out = run_cli(stack.project.base_dir, "down")
        assert code == 0 and "stopped" in out
        for record in before.components.values():
            assert f"pid {record.pid}" in out
            assert not record.alive()
        assert bystander.poll() is None, "down stops nothing it did not start"
    finally:
        bystander.kill()
        bystander.wait()
    assert stack.status().down
    result = stack.up()
    assert not result.already_up and result.status.uri == before.uri
    client = MlflowClient(result.status.uri)
    assert client.get_run(run_id).info.status == "FINISHED"
    assert client.get_model_version("kept", version).run_id == run_id
    model, rows = trained_model
    assert predict_with(result.status.uri, "kept", version, rows) == list(model.predict(rows))


def test_up_picks_another_port_when_its_last_one_was_taken(stack) -> None:
    from mlflow.tracking import MlflowClient

    before = stack.status()
    old = before.ports["mlflow"]
    experiment = MlflowClient(before.uri).create_experiment("kept-across-ports")
    stack.down()
    with socket.socket() as busy:
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        busy.bind(("127.0.0.1", old))
        busy.listen()
        result = stack.up()
        assert result.status.up and result.status.ports["mlflow"] != old
        assert result.status.uri == f"http://127.0.0.1:{result.status.ports['mlflow']}"
        project = stack.project
        assert tracking_uri(project.app, project.base_dir) == result.status.uri
        assert MlflowClient(result.status.uri).get_experiment(experiment).name == (
            "kept-across-ports"
        )


def test_seaweedfs_keeps_its_logs_in_the_stack_folder(make_app, tmp_path, monkeypatch) -> None:
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(private_tmp))  # where weed writes its logs by default
    project = make_app(SPEC, "weedlogs")
    code, out = run_cli(project.base_dir, "up")
    assert code == 0, out
    code, out = run_cli(project.base_dir, "down")
    assert code == 0, out
    assert not [p.name for p in private_tmp.iterdir() if p.name.startswith("weed")]
    logs = project.state_dir / "tracker" / "logs" / "seaweedfs"
    assert any(p.name.startswith("weed.") for p in logs.iterdir()), list(logs.iterdir())
