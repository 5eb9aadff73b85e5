"""Online services of an application: status (workers, model version) and live scaling,
through the engine's service backend (processes here, Deployments in a cluster)."""

from __future__ import annotations

from scanflow.api.errors import Conflict, Invalid, NotFound
from scanflow.api.views import ActionResult, ServiceView
from scanflow.api.workspace import AppHandle
from scanflow.errors import ScanflowError


def _spec(app: AppHandle, name: str):  # noqa: ANN202 - a spec Service
    for service in app.project.app.services:
        if service.name == name:
            return service
    raise NotFound(f"no service {name!r} in application {app.name!r}")


def service_view(app: AppHandle, name: str) -> ServiceView:
    """The status of service ``name``; ``ready`` False with ``error`` when it does not answer."""
    spec = _spec(app, name)
    try:
        status = app.engine().services().status(name)
    except ScanflowError as exc:
        status = {"ready": False, "error": str(exc)}
    version = status.get("model_version")
    return ServiceView(
        app=app.name,
        name=name,
        model=spec.model,
        port=spec.port,
        ready=bool(status.get("ready")),
        workers=status.get("workers"),
        model_version=None if version is None else str(version),
        error=status.get("error"),
        status=status,
    )


def list_services(app: AppHandle) -> list[ServiceView]:
    return [service_view(app, s.name) for s in app.project.app.services]


def scale(app: AppHandle, name: str, workers: int) -> ActionResult:
    """Grow or shrink service ``name`` to ``workers`` within its declared bounds."""
    spec = _spec(app, name)
    if not spec.min_workers <= workers <= spec.max_workers:
        raise Invalid(
            f"workers {workers} is outside service {name!r}'s bounds "
            f"{spec.min_workers}..{spec.max_workers} (min_workers/max_workers in scanflow.yaml)"
        )
    try:
        status = app.engine().services().scale(name, workers)
    except ScanflowError as exc:
        raise Conflict(f"cannot scale service {name!r}: {exc}") from None
    return ActionResult(message=f"service {name} now has {status.get('workers', workers)} workers")
