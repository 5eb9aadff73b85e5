"""The actions of :class:`~scanflow.api.client.ScanflowClient` carried out on this machine,
on one application folder's store, engines and registry, with the same names, arguments
and answers; a command takes either and has one code path::

    actions = LocalActions(AppHandle(project), who="local/alice")
    actions.reject("vision", decision_id, reason="the drift is a holiday")
"""

from __future__ import annotations

from typing import Any

from scanflow.api import agents as agents_api
from scanflow.api import lineage as lineage_api
from scanflow.api import models as models_api
from scanflow.api import runs as runs_api
from scanflow.api import services as services_api
from scanflow.api.errors import NotFound
from scanflow.api.views import ActionResult
from scanflow.api.workspace import AppHandle


class LocalActions:
    """Acts on ``handle``'s application; ``who`` is recorded as the person who acted."""

    def __init__(self, handle: AppHandle, who: str) -> None:
        self.handle = handle
        self.who = who

    def _app(self, app: str) -> AppHandle:
        if app != self.handle.name:
            raise NotFound(f"no application {app!r} here (this folder holds {self.handle.name!r})")
        return self.handle

    def start_run(
        self, app: str, workflow: str, parameters: dict[str, Any] | None = None
    ) -> ActionResult:
        return runs_api.submit(self._app(app), workflow, parameters)

    def retry(self, app: str, run_id: str) -> ActionResult:
        return runs_api.resume(self._app(app), run_id)

    def cancel(self, app: str, run_id: str) -> ActionResult:
        return runs_api.cancel(self._app(app), run_id)

    def scale(self, app: str, service: str, workers: int) -> ActionResult:
        return services_api.scale(self._app(app), service, workers)

    def move_alias(self, app: str, model: str, alias: str, version: str) -> ActionResult:
        return models_api.move_alias(self._app(app), model, alias, str(version))

    def pause_agent(self, app: str, agent: str, reason: str | None = None) -> ActionResult:
        return agents_api.pause(self._app(app), agent, self.who, reason)

    def resume_agent(self, app: str, agent: str) -> ActionResult:
        return agents_api.resume(self._app(app), agent, self.who)

    def approve(self, app: str, decision_id: str) -> ActionResult:
        return lineage_api.approve(self._app(app), decision_id, self.who)

    def reject(self, app: str, decision_id: str, reason: str | None = None) -> ActionResult:
        return lineage_api.reject(self._app(app), decision_id, self.who, reason)

    def revert(self, app: str, decision_id: str) -> ActionResult:
        return lineage_api.revert(self._app(app), decision_id, self.who)

    def close(self) -> None:
        self.handle.close()
