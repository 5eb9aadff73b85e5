"""A small HTTP client for a running service: predict, status, live scaling, refresh.

This is the API agents call to scale a service or to ask it to look at the registry.
Scaling and refreshing need the application's token (:mod:`scanflow.auth`)::

    client = ServingClient("http://127.0.0.1:8080", token=app_token(".scanflow"))
    client.scale(3, wait=True)       # grow to 3 workers, return once they serve
    client.status()["model_version"]
"""

from __future__ import annotations

from typing import Any

import httpx

from scanflow.auth import bearer
from scanflow.serving.errors import ServingError, Unauthorized


class ServingClient:
    """Talks to one service's HTTP port; ``token`` is sent as ``Authorization: Bearer``."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, headers=bearer(token))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ServingClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _json(self, response: httpx.Response) -> Any:
        try:
            data = response.json()
        except ValueError:
            data = {"error": response.text}
        if response.status_code >= 400:
            message = data.get("error") or data.get("message") if isinstance(data, dict) else data
            error = Unauthorized if response.status_code == 401 else ServingError
            raise error(
                f"{response.request.method} {response.request.url} answered "
                f"{response.status_code}: {message}"
            )
        return data

    def status(self) -> dict[str, Any]:
        """Workers, model version, staging, last error (``GET /admin/status``)."""
        return self._json(self._http.get("/admin/status"))

    def scale(self, workers: int, *, wait: bool = False, timeout: float = 30.0) -> dict[str, Any]:
        """Grow or shrink to ``workers``; with ``wait`` return once the pool has settled."""
        body = {"workers": workers, "wait": wait, "timeout": timeout}
        return self._json(self._http.post("/admin/workers", json=body, timeout=timeout + 10))

    def refresh(self) -> dict[str, Any]:
        """Look at the registry alias now rather than at the next poll."""
        return self._json(self._http.post("/admin/refresh", json={}))

    def ready(self) -> bool:
        """True when a model takes traffic."""
        try:
            return self._http.get("/v2/health/ready").status_code == 200
        except httpx.HTTPError:
            return False

    def predict(self, rows: Any) -> tuple[Any, str]:
        """MLflow-style prediction of ``rows``; returns (predictions, model version)."""
        response = self._http.post("/invocations", json={"inputs": rows})
        data = self._json(response)
        return data["predictions"], response.headers.get("x-model-version", "")
