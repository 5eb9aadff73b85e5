"""The one client of the Scanflow server's REST API (``scanflow server``), answering with
the same views the server is built from (:mod:`scanflow.api.views`)::

    with ScanflowClient("http://127.0.0.1:8600", token="sft_...") as server:
        page = server.runs("vision", workflow="train", limit=20)
        server.run("vision", page.items[0].id).steps

Errors are those of :mod:`scanflow.api.errors`: an unknown, expired or revoked token is
:class:`~scanflow.api.errors.Unauthenticated`, a read-only token asked to act
:class:`~scanflow.api.errors.Forbidden`, another team's application
:class:`~scanflow.api.errors.NotFound`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from scanflow.api.http import HttpClient
from scanflow.api.views import (
    ActionResult,
    AgentView,
    AppView,
    DecisionView,
    Page,
    RunSummary,
    RunView,
    ServiceView,
)

SERVER_ENV = "SCANFLOW_SERVER"


def _app(app: str) -> str:
    return f"/api/apps/{quote(app, safe='')}"


class ScanflowClient(HttpClient):
    """Talks to a Scanflow server with a team token (``Authorization: Bearer``)."""

    # -- read -----------------------------------------------------------------------------
    def whoami(self) -> dict[str, str]:
        """The token's team and scope."""
        return self.call("GET", "/api/whoami")

    def apps(self) -> list[AppView]:
        """The applications of the token's team."""
        return [AppView.model_validate(a) for a in self.call("GET", "/api/apps")]

    def runs(
        self,
        app: str,
        *,
        workflow: str | None = None,
        status: list[str] | None = None,
        engine: str | None = None,
        limit: int = 50,
        offset: int = 0,
        sort: str = "-created_at",
    ) -> Page[RunSummary]:
        """A page of ``app``'s runs, newest first unless ``sort`` says otherwise."""
        params: dict[str, Any] = {"limit": limit, "offset": offset, "sort": sort}
        params |= {"workflow": workflow, "engine": engine, "status": status or []}
        params = {k: v for k, v in params.items() if v is not None}
        data = self.call("GET", f"{_app(app)}/runs", params=params)
        return Page[RunSummary].model_validate(data)

    def run(self, app: str, run_id: str) -> RunView:
        """Run ``run_id`` with its steps and attempts."""
        return RunView.model_validate(self.call("GET", f"{_app(app)}/runs/{quote(run_id)}"))

    def agents(self, app: str) -> list[AgentView]:
        return [AgentView.model_validate(a) for a in self.call("GET", f"{_app(app)}/agents")]

    def decisions(self, app: str, agent: str | None = None, limit: int = 100) -> list[DecisionView]:
        """The agents' decisions, newest first."""
        params: dict[str, Any] = {"limit": limit, **({"agent": agent} if agent else {})}
        found = self.call("GET", f"{_app(app)}/decisions", params=params)
        return [DecisionView.model_validate(d) for d in found]

    def services(self, app: str) -> list[ServiceView]:
        return [ServiceView.model_validate(s) for s in self.call("GET", f"{_app(app)}/services")]

    # -- act (an admin token) -------------------------------------------------------------
    def _act(self, path: str, body: dict[str, Any] | None = None) -> ActionResult:
        return ActionResult.model_validate(self.call("POST", path, json=body or {}))

    def start_run(
        self, app: str, workflow: str, parameters: dict[str, Any] | None = None
    ) -> ActionResult:
        """Start ``workflow``; the new run's id is in ``run_id``."""
        body = {"parameters": parameters or {}}
        return self._act(f"{_app(app)}/workflows/{quote(workflow)}/runs", body)

    def retry(self, app: str, run_id: str) -> ActionResult:
        return self._act(f"{_app(app)}/runs/{quote(run_id)}/retry")

    def cancel(self, app: str, run_id: str) -> ActionResult:
        return self._act(f"{_app(app)}/runs/{quote(run_id)}/cancel")

    def scale(self, app: str, service: str, workers: int) -> ActionResult:
        return self._act(f"{_app(app)}/services/{quote(service)}/scale", {"workers": workers})

    def move_alias(self, app: str, model: str, alias: str, version: str) -> ActionResult:
        """Point ``model@alias`` at ``version`` (promote, or roll back)."""
        path = f"{_app(app)}/models/{quote(model)}/aliases/{quote(alias)}"
        return self._act(path, {"version": str(version)})

    def pause_agent(self, app: str, agent: str, reason: str | None = None) -> ActionResult:
        """Pause an agent: it senses, decides and acts no more until resumed."""
        return self._act(f"{_app(app)}/agents/{quote(agent)}/pause", {"reason": reason})

    def resume_agent(self, app: str, agent: str) -> ActionResult:
        """Resume a paused agent where it stopped."""
        return self._act(f"{_app(app)}/agents/{quote(agent)}/resume")

    def approve(self, app: str, decision_id: str) -> ActionResult:
        """Let the agent carry out a plan that waits for a person."""
        return self._act(f"{_app(app)}/decisions/{quote(decision_id)}/approve")

    def reject(self, app: str, decision_id: str, reason: str | None = None) -> ActionResult:
        """Refuse a plan that waits for a person (``reason`` kept as evidence)."""
        return self._act(f"{_app(app)}/decisions/{quote(decision_id)}/reject", {"reason": reason})

    def revert(self, app: str, decision_id: str) -> ActionResult:
        """Undo the decision's alias move."""
        return self._act(f"{_app(app)}/decisions/{quote(decision_id)}/revert")
