"""Which MLflow store an application tracks to: its declared tracker, else the embedded default."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from scanflow.spec.model import Application

ENV_TRACKING_URI = "SCANFLOW_TRACKING_URI"
MLFLOW_TRACKING_URI = "MLFLOW_TRACKING_URI"


def embedded_tracking_uri(base_dir: str | Path) -> str:
    """The embedded default: ``sqlite:///<base_dir>/.scanflow/mlflow.db``."""
    return f"sqlite:///{(Path(base_dir).resolve() / '.scanflow' / 'mlflow.db')}"


def embedded_artifact_root(base_dir: str | Path) -> str:
    """Where the embedded default keeps artifacts: ``<base_dir>/.scanflow/mlartifacts``."""
    return (Path(base_dir).resolve() / ".scanflow" / "mlartifacts").as_uri()


def tracking_uri(app: Application | None, base_dir: str | Path, explicit: str | None = None) -> str:
    """The tracking URI of ``app``; every command (run, serve, agents, the demo) uses this rule.

    In order: ``explicit`` (a ``--tracking-uri`` flag), ``$SCANFLOW_TRACKING_URI``,
    ``$MLFLOW_TRACKING_URI``, the spec's tracker (its ``uri``, or the stack that
    ``scanflow tracker up`` started in ``base_dir`` for a ``managed`` one), and the
    embedded store of ``base_dir``.
    """
    for uri in (explicit, os.environ.get(ENV_TRACKING_URI), os.environ.get(MLFLOW_TRACKING_URI)):
        if uri:
            return uri
    if app is not None and app.tracker is not None:
        if app.tracker.uri:
            return app.tracker.uri
        if app.tracker.managed:
            return managed_tracking_uri(app, base_dir)
    return embedded_tracking_uri(base_dir)


def managed_tracking_uri(app: Application, base_dir: str | Path) -> str:
    """The URI of the app's managed stack; a clear error when it was never started."""
    from scanflow.tracking.stack.state import recorded_uri

    uri = recorded_uri(Path(base_dir).resolve() / ".scanflow")
    if uri:
        return uri
    if app.tracker is not None and app.tracker.port:
        return f"http://127.0.0.1:{app.tracker.port}"
    from scanflow.errors import TrackingError

    raise TrackingError(
        f"application {app.name!r} declares a managed tracker that was never started in "
        f"{Path(base_dir).resolve()}; start it with 'scanflow tracker up' (or remove "
        "'tracker' from scanflow.yaml to use the embedded store)"
    )


def mlflow_client(uri: str) -> Any:
    """An ``MlflowClient`` for ``uri`` whose stores exist (a new SQLite store made safely)."""
    from mlflow.tracking import MlflowClient

    from scanflow.store.store import sqlite_creation_lock

    if not uri.startswith("sqlite:///"):
        return MlflowClient(uri)
    with sqlite_creation_lock(uri):
        client = MlflowClient(uri)  # creates the tracking tables
        client.search_registered_models(max_results=1)  # and the registry's
    return client
