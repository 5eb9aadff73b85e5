"""Local implementations of the agents' interfaces: an online service (through the serving
client), the MLflow model registry, and JSON-lines feeds (prediction logs, labels)."""

from __future__ import annotations

import logging
from typing import Any

from scanflow.api.errors import ApiError, Unreachable
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


class MlflowRegistry:
    """The MLflow model registry at ``tracking_uri``."""

    def __init__(self, tracking_uri: str) -> None:
        self.uri = tracking_uri
        self._client: Any = None

    def _mlflow(self) -> Any:
        if self._client is None:
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient(self.uri, registry_uri=self.uri)
        return self._client

    def alias_version(self, model: str, alias: str) -> str | None:
        """The version ``model@alias`` points at (None when unset)."""
        from mlflow.exceptions import MlflowException

        try:
            return str(self._mlflow().get_model_version_by_alias(model, alias).version)
        except MlflowException:
            return None

    def set_alias(self, model: str, alias: str, version: str) -> None:
        """Point ``model@alias`` at ``version``."""
        self._mlflow().set_registered_model_alias(model, alias, str(version))

    def versions(self, model: str) -> list[dict[str, Any]]:
        """Every version of ``model``, oldest first."""
        found = self._mlflow().search_model_versions(f"name = '{model}'")
        rows = [
            {
                "version": str(v.version),
                "run_id": v.run_id,
                "source": v.source,
                "created_at": v.creation_timestamp / 1000,
            }
            for v in found
        ]
        return sorted(rows, key=lambda r: int(r["version"]))


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
