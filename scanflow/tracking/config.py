"""Which MLflow store an application tracks to: its declared tracker, else the embedded default."""

from __future__ import annotations

import os
from pathlib import Path

from scanflow.spec.model import Application

ENV_TRACKING_URI = "SCANFLOW_TRACKING_URI"


def embedded_tracking_uri(base_dir: str | Path) -> str:
    """The embedded default: ``sqlite:///<base_dir>/.scanflow/mlflow.db``."""
    return f"sqlite:///{(Path(base_dir).resolve() / '.scanflow' / 'mlflow.db')}"


def embedded_artifact_root(base_dir: str | Path) -> str:
    """Where the embedded default keeps artifacts: ``<base_dir>/.scanflow/mlartifacts``."""
    return (Path(base_dir).resolve() / ".scanflow" / "mlartifacts").as_uri()


def tracking_uri(app: Application | None, base_dir: str | Path) -> str:
    """The tracking URI for ``app``: ``$SCANFLOW_TRACKING_URI``, the spec's tracker, or embedded."""
    if os.environ.get(ENV_TRACKING_URI):
        return os.environ[ENV_TRACKING_URI]
    if app is not None and app.tracker is not None and app.tracker.uri:
        return app.tracker.uri
    return embedded_tracking_uri(base_dir)
