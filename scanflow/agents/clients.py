"""Local implementations of the agents' interfaces: an online service over its HTTP admin
API, the MLflow model registry, and JSON-lines feeds (prediction logs, labels)."""

from __future__ import annotations

import logging
from typing import Any

from scanflow.auth import TOKEN_ENV, TOKEN_FILE, bearer
from scanflow.errors import ScanflowError
from scanflow.feed import JsonlFeed

log = logging.getLogger(__name__)

__all__ = ["HttpServiceControl", "JsonlFeed", "MlflowRegistry", "MlflowScorer", "MlflowProbe"]


class HttpServiceControl:
    """A Scanflow service at ``url``: ``/admin/status``, ``/admin/workers``,
    ``/admin/refresh`` and Prometheus ``/metrics``; ``token`` (the application's) is sent as
    ``Authorization: Bearer`` on the admin calls."""

    def __init__(self, url: str, timeout: float = 10.0, token: str | None = None) -> None:
        import httpx

        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout)
        self._auth = bearer(token)

    def close(self) -> None:
        """Release the connection pool."""
        self._http.close()

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self._http.request(method, path, headers=self._auth, **kwargs)
        if response.status_code == 401:
            raise ScanflowError(
                f"{self.url}{path} answered 401 (missing or wrong token): agents and services "
                f"must use the same application token (<app>/.scanflow/{TOKEN_FILE} or "
                f"${TOKEN_ENV})"
            )
        response.raise_for_status()
        return response.json()

    def status(self) -> dict[str, Any]:
        """The service's status; ``ready`` False when it does not answer."""
        import httpx

        try:
            return self._json("GET", "/admin/status")
        except httpx.HTTPError as exc:
            return {"ready": False, "reachable": False, "error": f"{type(exc).__name__}: {exc}"}
        except ScanflowError as exc:  # it answered, but refused the token
            return {"ready": False, "reachable": True, "error": str(exc)}

    def scale(self, workers: int) -> dict[str, Any]:
        """Grow or shrink to ``workers`` and wait until the pool has settled."""
        body = {"workers": workers, "wait": True, "timeout": 30}
        return self._json("POST", "/admin/workers", json=body, timeout=45)

    def refresh(self) -> dict[str, Any]:
        """Look at the registry alias now."""
        return self._json("POST", "/admin/refresh", json={})

    def metrics(self) -> dict[str, Any]:
        """Cumulative request, error and latency counters and current gauges."""
        response = self._http.get("/metrics")
        response.raise_for_status()
        return parse_metrics(response.text)


def parse_metrics(text: str) -> dict[str, Any]:
    """The figures agents use from a service's Prometheus exposition text."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, Any] = {"requests": 0.0, "errors": 0.0, "latency_buckets": {}}
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name, labels, value = sample.name, sample.labels, sample.value
            if name == "scanflow_requests_total":
                out["requests"] += value
            elif name == "scanflow_request_errors_total":
                out["errors"] += value
            elif name == "scanflow_request_latency_seconds_bucket":
                bound = float(labels["le"])
                buckets[bound] = buckets.get(bound, 0.0) + value
            elif name in (
                "scanflow_queue_depth",
                "scanflow_workers",
                "scanflow_model_ready",
                "scanflow_workers_target",
                "scanflow_model_version",
            ):
                out[name.removeprefix("scanflow_")] = value
            elif name == "scanflow_model_load_failures_total":
                out["load_failures"] = value
    out["latency_buckets"] = {str(k): v for k, v in sorted(buckets.items())}
    return out


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
