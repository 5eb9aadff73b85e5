"""Local implementations of the agents' interfaces: an online service (through the serving
client), the MLflow model registry (the API layer's :class:`~scanflow.api.models.Registry`),
and JSON-lines feeds (prediction logs, labels)."""

from __future__ import annotations

import logging
from typing import Any

from scanflow.api.errors import ApiError, Unreachable
from scanflow.api.models import Registry as MlflowRegistry
from scanflow.feed import JsonlFeed
from scanflow.serving.client import ServingClient, parse_metrics  # noqa: F401 (agents import it here)

log = logging.getLogger(__name__)

__all__ = ["HttpServiceControl", "JsonlFeed", "MlflowRegistry", "MlflowScorer", "MlflowProbe"]


class HttpServiceControl(ServingClient):
    """A Scanflow service as agents see it (:class:`~scanflow.agents.interfaces.ServiceControl`):
    the serving client, with a :meth:`status` that reports an unreachable or refusing service
    as facts instead of raising, and a :meth:`scale` that waits until the pool has settled."""

    def __init__(self, url: str, timeout: float = 10.0, token: str | None = None) -> None:
        super().__init__(url, token=token, timeout=timeout)

    def status(self) -> dict[str, Any]:
        """The service's status; ``ready`` False (and ``reachable``) when it cannot tell."""
        try:
            return super().status()
        except Unreachable as exc:
            return {"ready": False, "reachable": False, "error": str(exc)}
        except ApiError as exc:  # it answered, but refused (the token, say)
            return {"ready": False, "reachable": True, "error": str(exc)}

    def scale(self, workers: int, *, wait: bool = True, timeout: float = 30.0) -> dict[str, Any]:
        """Grow or shrink to ``workers`` and (by default) wait until the pool has settled."""
        return super().scale(workers, wait=wait, timeout=timeout)


def load_version(tracking_uri: str, model: str, version: str) -> Any:
    """Model ``version`` of ``model`` as an MLflow pyfunc, without touching MLflow's global
    tracking or registry URI (setting those leaks into child processes' environment)."""
    import mlflow
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri, registry_uri=tracking_uri)
    source = client.get_model_version_download_uri(model, version)
    local = mlflow.artifacts.download_artifacts(
        artifact_uri=source, tracking_uri=tracking_uri, registry_uri=tracking_uri
    )
    return mlflow.pyfunc.load_model(local)


class MlflowScorer:
    """Accuracy of a registered model version on labelled rows (models cached by version)."""

    def __init__(self, tracking_uri: str) -> None:
        self.uri = tracking_uri
        self._models: dict[tuple[str, str], Any] = {}

    def __call__(self, model: str, version: str, X: Any, y: Any) -> float:
        import numpy as np

        key = (model, str(version))
        if key not in self._models:
            self._models[key] = load_version(self.uri, model, str(version))
        predicted = np.asarray(self._models[key].predict(np.asarray(X))).ravel()
        return float((predicted == np.asarray(y).ravel()).mean())


class MlflowProbe:
    """Loads a registered model version in a subprocess and predicts its input example."""

    def __init__(self, tracking_uri: str, timeout: float = 120.0) -> None:
        self.uri, self.timeout = tracking_uri, timeout

    def __call__(self, model: str, version: str) -> str | None:
        import subprocess
        import sys

        code = (
            "import sys, mlflow\n"
            "mlflow.set_tracking_uri(sys.argv[1]); mlflow.set_registry_uri(sys.argv[1])\n"
            "uri = f'models:/{sys.argv[2]}/{sys.argv[3]}'\n"
            "m = mlflow.pyfunc.load_model(uri)\n"
            "example = m.input_example\n"
            "if example is not None: m.predict(example)\n"
        )
        try:
            done = subprocess.run(
                [sys.executable, "-c", code, self.uri, model, str(version)],
                capture_output=True,
                text=True,
                timeout=self.timeout,
            )
        except subprocess.TimeoutExpired:
            return f"loading v{version} took more than {self.timeout:g}s"
        if done.returncode != 0:
            lines = [ln for ln in done.stderr.strip().splitlines() if ln.strip()]
            return lines[-1] if lines else f"exit code {done.returncode}"
        return None
