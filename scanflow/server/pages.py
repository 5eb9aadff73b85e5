"""The dashboard: server-rendered pages (Jinja, autoescaped) over :mod:`scanflow.api`.

Pages read with the session cookie; their buttons call the JSON API with the CSRF header
(``static/scanflow.js``). Anything a user wrote (names, parameters, logs, evidence) is
rendered as text, never as markup or script.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from scanflow.api import agents as agents_api
from scanflow.api import compare as compare_api
from scanflow.api import lineage as lineage_api
from scanflow.api import metrics as metrics_api
from scanflow.api import model_lineage
from scanflow.api import models as models_api
from scanflow.api import runs as runs_api
from scanflow.api import services as services_api
from scanflow.api.errors import ApiError
from scanflow.api.tokens import Identity
from scanflow.api.workspace import AppHandle, Workspace
from scanflow.server.auth import SESSION_COOKIE, end_session, tokens

TEMPLATES = Path(__file__).with_name("templates")
env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True))
env.filters["when"] = lambda t: (
    datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S") if t else "-"
)
env.filters["secs"] = lambda d: "-" if d is None else f"{d:.1f}s"
env.filters["pretty"] = lambda v: json.dumps(v, indent=2, sort_keys=True, default=str)

router = APIRouter(include_in_schema=False)


def render(name: str, request: Request, status: int = 200, **context: Any) -> HTMLResponse:
    html = env.get_template(name).render(request=request, now=time.time(), **context)
    return HTMLResponse(html, status_code=status)


def error_page(request: Request, status: int, message: str) -> Response:
    if status == 401:
        return RedirectResponse("/login", status_code=303)
    return render("error.html", request, status=status, status_code=status, message=message)


def viewer(request: Request) -> Identity:
    """The signed-in browser's identity (the cookie), else a redirect to /login."""
    return tokens(request).verify(request.cookies.get(SESSION_COOKIE))


def _ws(request: Request) -> Workspace:
    return request.app.state.workspace


def _app(request: Request, app: str, who: Identity) -> AppHandle:
    return _ws(request).app(who, app)


def _safe(call: Any, *args: Any) -> tuple[Any, str | None]:
    """``call(*args)`` or (None, the reason) when a part (tracking, a service) is down."""
    try:
        return call(*args), None
    except ApiError as exc:
        return None, str(exc)


@router.get("/login", response_class=HTMLResponse)
def login(request: Request) -> HTMLResponse:
    return render("login.html", request)


@router.get("/logout")
def logout() -> Response:
    response = RedirectResponse("/login", status_code=303)
    end_session(response)
    return response


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, who: Identity = Depends(viewer)) -> HTMLResponse:
    apps = []
    for handle in _ws(request).visible(who):
        runs, runs_error = _safe(runs_api.list_runs, handle, runs_api.RunQuery(limit=10))
        decisions, decisions_error = _safe(agents_api.decisions, handle, None, 10)
        services = [services_api.service_view(handle, s.name) for s in handle.project.app.services]
        apps.append(
            {
                "handle": handle,
                "runs": runs.items if runs else [],
                "runs_error": runs_error,
                "decisions": decisions or [],
                "decisions_error": decisions_error,
                "services": services,
            }
        )
    return render("overview.html", request, who=who, apps=apps)


def _names(text: str) -> list[str]:
    return [c.strip() for c in text.split(",") if c.strip()]


@router.get("/apps/{app}/runs", response_class=HTMLResponse)
def runs_page(
    request: Request,
    app: str,
    status: list[str] = Query(default_factory=list),
    workflow: str | None = Query(None),
    param: list[str] = Query(default_factory=list),
    metric: list[str] = Query(default_factory=list),
    sort: str = Query("-created_at"),
    offset: int = Query(0, ge=0),
    limit: int = Query(50, ge=1, le=runs_api.MAX_LIMIT),
    cols: str | None = Query(None, description="Parameter columns, comma separated."),
    mcols: str | None = Query(None, description="Metric columns, comma separated."),
    who: Identity = Depends(viewer),
) -> HTMLResponse:
    handle = _app(request, app, who)
    query = runs_api.RunQuery(
        status, workflow or None, param, sort, offset, limit, metric, with_metrics=True
    )
    page = runs_api.list_runs(handle, query)
    param_names = sorted(
        {k for w in handle.project.app.workflows for k in (w.parameters or {})}
        | {k for r in page.items for k in r.parameters}
    )
    metric_names = metrics_api.names(handle)
    columns = _names(cols) if cols is not None else param_names[:6]
    metric_columns = _names(mcols) if mcols is not None else metric_names[:4]
    return render(
        "runs.html",
        request,
        who=who,
        app=handle,
        page=page,
        query=query,
        columns=columns,
        metric_columns=metric_columns,
        param_names=param_names,
        metric_names=metric_names,
    )


@router.get("/apps/{app}/compare", response_class=HTMLResponse)
def compare_page(
    request: Request,
    app: str,
    run: list[str] = Query(default_factory=list),
    show_all: bool = Query(False, alias="all", description="Show equal parameters too."),
    who: Identity = Depends(viewer),
) -> HTMLResponse:
    handle = _app(request, app, who)
    view = compare_api.compare(handle, run)
    return render(
        "compare.html",
        request,
        who=who,
        app=handle,
        view=view,
        show_all=show_all,
        compare_data=view.model_dump(include={"runs": {"__all__": {"id"}}, "curves": True}),
    )


@router.get("/apps/{app}/runs/{run_id}", response_class=HTMLResponse)
def run_page(
    request: Request, app: str, run_id: str, who: Identity = Depends(viewer)
) -> HTMLResponse:
    handle = _app(request, app, who)
    run = runs_api.get_run(handle, run_id)
    return render("run.html", request, who=who, app=handle, run=run, run_data=run.model_dump())


@router.get("/apps/{app}/services", response_class=HTMLResponse)
def services_page(request: Request, app: str, who: Identity = Depends(viewer)) -> HTMLResponse:
    handle = _app(request, app, who)
    services = services_api.list_services(handle)
    return render("services.html", request, who=who, app=handle, services=services)


@router.get("/apps/{app}/services/{name}", response_class=HTMLResponse)
def service_page(
    request: Request, app: str, name: str, who: Identity = Depends(viewer)
) -> HTMLResponse:
    handle = _app(request, app, who)
    service = services_api.service_view(handle, name)
    spec = next(s for s in handle.project.app.services if s.name == name)
    history = request.app.state.sampler.history(handle, name)
    return render(
        "service.html",
        request,
        who=who,
        app=handle,
        service=service,
        spec=spec,
        history=history,
        history_data=history.model_dump(),
    )


@router.get("/apps/{app}/models", response_class=HTMLResponse)
def models_page(request: Request, app: str, who: Identity = Depends(viewer)) -> HTMLResponse:
    handle = _app(request, app, who)
    models, error = _safe(models_api.list_models, handle)
    return render("models.html", request, who=who, app=handle, models=models or [], error=error)


@router.get("/apps/{app}/models/{name}", response_class=HTMLResponse)
def model_page(
    request: Request, app: str, name: str, who: Identity = Depends(viewer)
) -> HTMLResponse:
    handle = _app(request, app, who)
    model = model_lineage.with_lineage(handle, models_api.get_model(handle, name))
    metric_names = sorted({k for v in model.versions for k in v.metrics})
    return render(
        "model.html", request, who=who, app=handle, model=model, metric_names=metric_names
    )


@router.get("/apps/{app}/decisions/{decision_id}", response_class=HTMLResponse)
def decision_page(
    request: Request, app: str, decision_id: str, who: Identity = Depends(viewer)
) -> HTMLResponse:
    handle = _app(request, app, who)
    view = lineage_api.lineage(handle, decision_id)
    return render(
        "decision.html",
        request,
        who=who,
        app=handle,
        lineage=view,
        lineage_data=view.model_dump(include={"steps"}),
    )


@router.get("/apps/{app}/agents", response_class=HTMLResponse)
def agents_page(request: Request, app: str, who: Identity = Depends(viewer)) -> HTMLResponse:
    handle = _app(request, app, who)
    agents = agents_api.list_agents(handle)
    decisions = agents_api.decisions(handle, None, 100)
    return render("agents.html", request, who=who, app=handle, agents=agents, decisions=decisions)
