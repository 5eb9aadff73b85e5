"""The one HTTP client of a running service: predict, status, live scaling, refresh, metrics.

The CLI, tests and the agents (:class:`scanflow.agents.clients.HttpServiceControl`) all use
it. Scaling and refreshing need the application's token (:mod:`scanflow.auth`)::

    client = ServingClient("http://127.0.0.1:8080", token=app_token(".scanflow"))
    client.scale(3, wait=True)       # grow to 3 workers, return once they serve
    client.status()["model_version"]

Errors are those of every Scanflow client (:mod:`scanflow.api.errors`):
:class:`~scanflow.serving.errors.Unauthorized` (401), :class:`~scanflow.serving.errors.Unreachable`
(no answer) and another :class:`~scanflow.api.errors.ApiError` for any other refusal.
"""

from __future__ import annotations

from typing import Any

import httpx

from scanflow.api.http import HttpClient, check
from scanflow.auth import TOKEN_ENV, TOKEN_FILE


class ServingClient(HttpClient):
    """Talks to one service's HTTP port; ``token`` is sent as ``Authorization: Bearer``."""

    unauthenticated_hint = (
        "clients and services must use the same application token "
        f"(<app>/.scanflow/{TOKEN_FILE} or ${TOKEN_ENV})"
    )

    def status(self) -> dict[str, Any]:
        """Workers, model version, staging, failed versions (``GET /admin/status``)."""
        return self.call("GET", "/admin/status")

    def scale(self, workers: int, *, wait: bool = False, timeout: float = 30.0) -> dict[str, Any]:
        """Grow or shrink to ``workers``; with ``wait`` return once the pool has settled."""
        body = {"workers": workers, "wait": wait, "timeout": timeout}
        return self.call("POST", "/admin/workers", json=body, timeout=timeout + 15)

    def refresh(self) -> dict[str, Any]:
        """Look at the registry alias now rather than at the next poll."""
        return self.call("POST", "/admin/refresh", json={})

    def ready(self) -> bool:
        """True when a model takes traffic."""
        try:
            return self._http.get("/v2/health/ready").status_code == 200
        except httpx.HTTPError:
            return False

    def predict(self, rows: Any) -> tuple[Any, str]:
        """MLflow-style prediction of ``rows``; returns (predictions, model version)."""
        response = check(self.request("POST", "/invocations", json={"inputs": rows}))
        return response.json()["predictions"], response.headers.get("x-model-version", "")

    def metrics(self) -> dict[str, Any]:
        """Cumulative request, error and latency counters and current gauges (``/metrics``)."""
        return parse_metrics(check(self.request("GET", "/metrics")).text)


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
