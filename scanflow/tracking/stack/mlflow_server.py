"""The MLflow tracking server of the stack: PostgreSQL backend, artifacts proxied to S3.

Clients upload and download artifacts through the server (``--artifacts-destination
s3://...``), so they need no S3 keys; the server alone holds them.
"""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from scanflow.errors import TrackingError
from scanflow.tracking.stack.mlflow_main import DB_WAIT_ENV
from scanflow.tracking.stack.ports import HOST, answers_http
from scanflow.tracking.stack.postgres import DATABASE, DB_USER
from scanflow.tracking.stack.processes import ProcessRecord, log_tail, spawn, stop, wait_until

# MLflow 3 starts a job-worker pool unless this is false (name checked in mlflow 3.17).
JOB_EXECUTION_ENV = "MLFLOW_SERVER_ENABLE_JOB_EXECUTION"
_DROPPED_ENV = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_RUN_ID",
    "MLFLOW_EXPERIMENT_ID",
    "MLFLOW_EXPERIMENT_NAME",
)


@dataclass(frozen=True)
class S3Target:
    """Where the server puts artifacts, with the keys it signs its requests with."""

    endpoint: str
    bucket: str
    access_key: str
    secret_key: str


def backend_uri(pg_port: int) -> str:
    """The SQLAlchemy URI of the MLflow database (the password comes from a pgpass file)."""
    return f"postgresql+psycopg://{DB_USER}@{HOST}:{pg_port}/{DATABASE}"


def write_pgpass(path: Path, password: str) -> None:
    """A libpq password file (mode 0600) for the MLflow role, valid for any port."""
    from scanflow.tracking.stack.credentials import write_private

    write_private(path, f"{HOST}:*:{DATABASE}:{DB_USER}:{password}\n")


def start(
    port: int,
    pg_port: int,
    pgpass: Path,
    s3: S3Target,
    workers: int,
    log_path: Path,
    db_timeout: float = 180.0,
) -> ProcessRecord:
    """Start the server on ``127.0.0.1:port``; returns at once (see :func:`wait_ready`).

    The server imports MLflow, then waits up to ``db_timeout`` seconds for its database,
    so PostgreSQL may still be starting when this is called.
    """
    argv = [
        sys.executable,
        "-m",
        "scanflow.tracking.stack.mlflow_main",
        "--backend-store-uri",
        backend_uri(pg_port),
        "--artifacts-destination",
        f"s3://{s3.bucket}",
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--uvicorn-opts",
        "--no-access-log",
    ]
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
    env.update(
        {
            JOB_EXECUTION_ENV: "false",
            "PGPASSFILE": str(pgpass),
            "MLFLOW_S3_ENDPOINT_URL": s3.endpoint,
            "AWS_ACCESS_KEY_ID": s3.access_key,
            "AWS_SECRET_ACCESS_KEY": s3.secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_RETRY_MODE": "standard",
            "AWS_MAX_ATTEMPTS": "2",
            "PYTHONUNBUFFERED": "1",
            DB_WAIT_ENV: str(db_timeout),
        }
    )
    return spawn("mlflow", argv, log_path=log_path, env=env, cwd=log_path.parent)


def wait_ready(record: ProcessRecord, port: int, timeout: float) -> None:
    """Block until ``/health`` answers 200; a clear error if the server exits first."""
    url = f"http://{HOST}:{port}/health"

    def fail(reason: str) -> TrackingError:
        return TrackingError(
            f"MLflow server failed to start on {HOST}:{port}: {reason}; its log "
            f"{record.log_path} ends with:\n{log_tail(record.log_path)}"
        )

    wait_until(
        lambda: answers_http(url) == 200,
        timeout=timeout,
        what="the MLflow server",
        watch=record,
        on_timeout=fail,
    )


def stop_server(record: ProcessRecord) -> bool:
    """Graceful stop (SIGTERM to its process group)."""
    return stop(record, sig=signal.SIGTERM, grace=15.0, group=True)
