"""The REST API under ``/api``: thin endpoints over :mod:`scanflow.api`.

Every endpoint declares its response model, so the OpenAPI document (``/api/openapi.json``)
describes each answer, errors included (``{"error": "..."}``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, Field

from scanflow.api import agents as agents_api
from scanflow.api import compare as compare_api
from scanflow.api import lineage as lineage_api
from scanflow.api import model_lineage
from scanflow.api import models as models_api
from scanflow.api import runs as runs_api
from scanflow.api import services as services_api
from scanflow.api.tokens import Identity
from scanflow.api.views import (
    ActionResult,
    AgentView,
    AppView,
    CompareView,
    DecisionView,
    Health,
    Lineage,
    ModelView,
    Page,
    RunSummary,
    RunView,
    ServiceHistory,
    ServiceView,
    WorkflowView,
)
from scanflow.api.workspace import AppHandle, Workspace
from scanflow.server.auth import admin, end_session, identity, start_session, tokens
from scanflow.server.events import run_events


class ErrorView(BaseModel):
    error: str


class WhoAmI(BaseModel):
    team: str
    scope: str
    token_id: str


class SessionIn(BaseModel):
    token: str = Field(min_length=1, max_length=200)


class SessionOut(WhoAmI):
    csrf_token: str


class RunIn(BaseModel):
    parameters: dict[str, Any] = Field(default_factory=dict)


class ScaleIn(BaseModel):
    workers: int = Field(ge=1, le=1024)


class RejectIn(BaseModel):
    """Why a person refuses a plan or pauses an agent."""

    reason: str | None = Field(
        default=None, max_length=500, description="why (kept as the action's evidence)"
    )


class AliasIn(BaseModel):
    version: str = Field(min_length=1, max_length=20, pattern=r"^[0-9]+$")


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorView} for code in (400, 401, 403, 404, 409, 503)
}
router = APIRouter(prefix="/api", responses=ERRORS)
open_router = APIRouter(prefix="/api")


def workspace(request: Request) -> Workspace:
    return request.app.state.workspace


def app_for(app: str, request: Request, who: Identity = Depends(identity)) -> AppHandle:
    """The application named in the path, if the caller's team owns it (else 404)."""
    return workspace(request).app(who, app)


def admin_app(app: str, request: Request, who: Identity = Depends(admin)) -> AppHandle:
    return workspace(request).app(who, app)


def _app_view(h: AppHandle) -> AppView:
    a = h.project.app
    return AppView(
        name=a.name,
        team=a.team,
        target=a.target,
        workflows=[w.name for w in a.workflows],
        services=[s.name for s in a.services],
        agents=[g.name for g in a.agents],
    )


# -- open ------------------------------------------------------------------------------
@open_router.get("/health", response_model=Health)
def health(request: Request) -> Health:
    """Liveness: the server answers (no token needed)."""
    from scanflow import __version__

    ready = request.app.state.tracking_ready.is_set()
    return Health(status="ok", version=__version__, tracking_ready=ready)


@open_router.post("/session", response_model=SessionOut, responses=ERRORS)
def sign_in(body: SessionIn, request: Request, response: Response) -> SessionOut:
    """Sign a browser in with a token: sets the session and CSRF cookies."""
    who = tokens(request).verify(body.token)
    csrf = start_session(response, body.token, request.url.scheme == "https")
    return SessionOut(team=who.team, scope=who.scope, token_id=who.token_id, csrf_token=csrf)


@open_router.delete("/session", response_model=ActionResult)
def sign_out(response: Response) -> ActionResult:
    """Forget the browser's session cookies."""
    end_session(response)
    return ActionResult(message="signed out")


# -- read ------------------------------------------------------------------------------
@router.get("/whoami", response_model=WhoAmI)
def whoami(who: Identity = Depends(identity)) -> WhoAmI:
    return WhoAmI(team=who.team, scope=who.scope, token_id=who.token_id)


@router.get("/apps", response_model=list[AppView])
def list_apps(request: Request, who: Identity = Depends(identity)) -> list[AppView]:
    """The applications of the caller's team."""
    return [_app_view(h) for h in workspace(request).visible(who)]


@router.get("/apps/{app}", response_model=AppView)
def get_app(handle: AppHandle = Depends(app_for)) -> AppView:
    return _app_view(handle)


@router.get("/apps/{app}/workflows/{workflow}", response_model=WorkflowView)
def get_workflow(workflow: str, handle: AppHandle = Depends(app_for)) -> WorkflowView:
    """A workflow's DAG as declared."""
    return runs_api.workflow_view(handle, workflow)


@router.get("/apps/{app}/runs", response_model=Page[RunSummary])
def list_runs(
    handle: AppHandle = Depends(app_for),
    status: list[str] = Query(default_factory=list, description="Only runs in these states."),
    workflow: str | None = Query(None, max_length=63),
    engine: str | None = Query(None, max_length=63, description="Only runs of this engine."),
    param: list[str] = Query(
        default_factory=list, description="Parameter filters like lr>=0.1 or dataset=digits."
    ),
    sort: str = Query("-created_at", max_length=100),
    offset: int = Query(0, ge=0),
    limit: int = Query(50, ge=1, le=runs_api.MAX_LIMIT),
    metric: list[str] = Query(
        default_factory=list, description="Metric filters like accuracy>=0.9 (last values)."
    ),
    metrics: bool = Query(False, description="Include each run's last metric values."),
) -> Page[RunSummary]:
    """A page of runs, filtered and sorted by the database."""
    query = runs_api.RunQuery(status, workflow, param, sort, offset, limit, metric, metrics, engine)
    return runs_api.list_runs(handle, query)


@router.get("/apps/{app}/compare", response_model=CompareView)
def compare_runs(
    handle: AppHandle = Depends(app_for),
    run: list[str] = Query(default_factory=list, description="Two to ten run ids."),
) -> CompareView:
    """Runs side by side (also of different workflows): parameter differences, last
    metric values and every logged value of each metric."""
    return compare_api.compare(handle, run)


@router.get("/apps/{app}/runs/{run_id}", response_model=RunView)
def get_run(run_id: str, handle: AppHandle = Depends(app_for)) -> RunView:
    return runs_api.get_run(handle, run_id)


@router.get(
    "/apps/{app}/runs/{run_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "RunView events"}},
)
async def get_run_events(run_id: str, handle: AppHandle = Depends(app_for)) -> Any:
    """Server-sent events: a ``run`` event (a RunView) at every change, until the run ends."""
    runs_api.get_record(handle, run_id)
    return run_events(handle, run_id)


@router.get(
    "/apps/{app}/runs/{run_id}/logs",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/plain": {}}, "description": "The logs, streamed"}},
)
def get_logs(
    run_id: str, step: str | None = Query(None, max_length=63), handle: AppHandle = Depends(app_for)
) -> StreamingResponse:
    """The run's logs (or one step's), streamed as plain text."""
    chunks = runs_api.logs(handle, run_id, step)
    return StreamingResponse(chunks, media_type="text/plain; charset=utf-8")


@router.get("/apps/{app}/runs/{run_id}/steps/{step}/artifacts", response_model=list[str])
def list_artifacts(run_id: str, step: str, handle: AppHandle = Depends(app_for)) -> list[str]:
    return runs_api.artifacts(handle, run_id, step)


@router.get(
    "/apps/{app}/runs/{run_id}/steps/{step}/artifacts/{path:path}",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "The file"}},
)
def get_artifact(
    run_id: str, step: str, path: str, handle: AppHandle = Depends(app_for)
) -> FileResponse:
    """One output file of a step (paths with '..' are refused)."""
    target = runs_api.artifact_path(handle, run_id, step, path)
    return FileResponse(target, media_type="application/octet-stream", filename=target.name)


@router.get("/apps/{app}/services", response_model=list[ServiceView])
def list_services(handle: AppHandle = Depends(app_for)) -> list[ServiceView]:
    return services_api.list_services(handle)


@router.get("/apps/{app}/services/{name}", response_model=ServiceView)
def get_service(name: str, handle: AppHandle = Depends(app_for)) -> ServiceView:
    return services_api.service_view(handle, name)


@router.get("/apps/{app}/services/{name}/history", response_model=ServiceHistory)
def get_service_history(name: str, request: Request, handle: AppHandle = Depends(app_for)) -> Any:
    """Requests/s, errors/s, p95 latency and workers over the last hour (sampled by this
    server since it started) and which model version served when (prediction log)."""
    return request.app.state.sampler.history(handle, name)


@router.get("/apps/{app}/agents", response_model=list[AgentView])
def list_agents(handle: AppHandle = Depends(app_for)) -> list[AgentView]:
    return agents_api.list_agents(handle)


@router.get("/apps/{app}/decisions", response_model=list[DecisionView])
def list_decisions(
    handle: AppHandle = Depends(app_for),
    agent: str | None = Query(None, max_length=63),
    limit: int = Query(100, ge=1, le=1000),
) -> list[DecisionView]:
    """The agents' decisions, newest first, each with its evidence."""
    return agents_api.decisions(handle, agent, limit)


@router.get("/apps/{app}/decisions/{decision_id}", response_model=DecisionView)
def get_decision(decision_id: str, handle: AppHandle = Depends(app_for)) -> DecisionView:
    return agents_api.decision(handle, decision_id)


@router.get("/apps/{app}/decisions/{decision_id}/lineage", response_model=Lineage)
def get_lineage(decision_id: str, handle: AppHandle = Depends(app_for)) -> Lineage:
    """The decision's chain: data window, drift evidence, decision, retrain run, gate,
    alias move, served version, outcome; each link with its evidence."""
    return lineage_api.lineage(handle, decision_id)


@router.get("/apps/{app}/models", response_model=list[ModelView])
def list_models(handle: AppHandle = Depends(app_for)) -> list[ModelView]:
    return models_api.list_models(handle)


@router.get("/apps/{app}/models/{name}", response_model=ModelView)
def get_model(name: str, handle: AppHandle = Depends(app_for)) -> ModelView:
    """Versions with their aliases, metrics and origin (run, data, team, decision)."""
    return model_lineage.with_lineage(handle, models_api.get_model(handle, name))


# -- act (admin token; CSRF token with the browser's cookie) ----------------------------
@router.post("/apps/{app}/workflows/{workflow}/runs", response_model=ActionResult)
def start_run(
    workflow: str, body: RunIn = Body(default_factory=RunIn), handle: AppHandle = Depends(admin_app)
) -> ActionResult:
    """Start a run of ``workflow``; the new run's id is in ``run_id``."""
    return runs_api.submit(handle, workflow, body.parameters)


@router.post("/apps/{app}/runs/{run_id}/retry", response_model=ActionResult)
def retry_run(run_id: str, handle: AppHandle = Depends(admin_app)) -> ActionResult:
    """Run again the steps that did not succeed, from the failed one on."""
    return runs_api.resume(handle, run_id)


@router.post("/apps/{app}/runs/{run_id}/cancel", response_model=ActionResult)
def cancel_run(run_id: str, handle: AppHandle = Depends(admin_app)) -> ActionResult:
    return runs_api.cancel(handle, run_id)


@router.post("/apps/{app}/services/{name}/scale", response_model=ActionResult)
def scale_service(name: str, body: ScaleIn, handle: AppHandle = Depends(admin_app)) -> ActionResult:
    return services_api.scale(handle, name, body.workers)


@router.post("/apps/{app}/agents/{name}/pause", response_model=ActionResult)
def pause_agent(
    name: str,
    body: RejectIn = Body(default_factory=RejectIn),
    handle: AppHandle = Depends(admin_app),
    who: Identity = Depends(admin),
) -> ActionResult:
    """Pause the agent: it senses, decides and starts no plan step until resumed."""
    return agents_api.pause(handle, name, f"{who.team}/{who.token_id}", body.reason)


@router.post("/apps/{app}/agents/{name}/resume", response_model=ActionResult)
def resume_agent(
    name: str, handle: AppHandle = Depends(admin_app), who: Identity = Depends(admin)
) -> ActionResult:
    """Resume a paused agent where it stopped."""
    return agents_api.resume(handle, name, f"{who.team}/{who.token_id}")


@router.post("/apps/{app}/decisions/{decision_id}/approve", response_model=ActionResult)
def approve_decision(
    decision_id: str, handle: AppHandle = Depends(admin_app), who: Identity = Depends(admin)
) -> ActionResult:
    """Let the agent carry out a plan that waits for a person's approval."""
    return lineage_api.approve(handle, decision_id, f"{who.team}/{who.token_id}")


@router.post("/apps/{app}/decisions/{decision_id}/reject", response_model=ActionResult)
def reject_decision(
    decision_id: str,
    body: RejectIn = Body(default_factory=RejectIn),
    handle: AppHandle = Depends(admin_app),
    who: Identity = Depends(admin),
) -> ActionResult:
    """Refuse a plan that waits for a person's approval: the agent never runs it."""
    return lineage_api.reject(handle, decision_id, f"{who.team}/{who.token_id}", body.reason)


@router.post("/apps/{app}/decisions/{decision_id}/revert", response_model=ActionResult)
def revert_decision(
    decision_id: str, handle: AppHandle = Depends(admin_app), who: Identity = Depends(admin)
) -> ActionResult:
    """Undo the decision's alias move (point the alias back where it was)."""
    return lineage_api.revert(handle, decision_id, f"{who.team}/{who.token_id}")


@router.post("/apps/{app}/models/{name}/aliases/{alias}", response_model=ActionResult)
def move_alias(
    name: str, alias: str, body: AliasIn, handle: AppHandle = Depends(admin_app)
) -> ActionResult:
    """Point ``name@alias`` at ``body.version`` (promote, or roll back)."""
    return models_api.move_alias(handle, name, alias, body.version)
