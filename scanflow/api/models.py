"""Models of an application in its MLflow registry: versions, aliases, the metrics of the
run that made each version, and moving an alias (promote, roll back).

An application sees the registered models of its own embedded store, and on a shared
tracking server the models its services serve or that carry its team in the tag
``scanflow.team`` (names never leak across teams).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from scanflow.api.errors import Invalid, NotFound, Unavailable
from scanflow.api.views import ActionResult, ModelView, VersionView
from scanflow.api.workspace import AppHandle

log = logging.getLogger(__name__)


@contextmanager
def tracking_errors(app: AppHandle) -> Iterator[None]:
    """MLflow failures as API errors: unreachable -> :class:`Unavailable`, missing -> NotFound."""
    from mlflow.exceptions import MlflowException, RestException

    try:
        yield
    except RestException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise NotFound(exc.message) from None
        raise Unavailable(f"the tracking server of {app.name!r} refused: {exc.message}") from None
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise NotFound(exc.message) from None
        if exc.error_code == "INVALID_PARAMETER_VALUE":
            raise Invalid(exc.message) from None
        raise Unavailable(
            f"the tracking server of {app.name!r} ({app.tracking_uri}) does not answer: "
            f"{exc.message.splitlines()[0] if exc.message else exc}"
        ) from None
    except OSError as exc:
        raise Unavailable(f"the tracking server of {app.name!r} does not answer: {exc}") from None


_locks_lock = threading.Lock()
_locks: dict[str, threading.Lock] = {}  # one per embedded store: it opens once at a time
_ready: set[str] = set()


def open_store(app: AppHandle) -> None:
    """Open ``app``'s own embedded MLflow store once per process: a fresh one creates its
    tables first, which takes seconds. The server does it for each application as it
    starts, so a first request finds it ready (or waits for that opening to end)."""
    if not _own_store(app) or app.tracking_uri in _ready:
        return
    from mlflow import MlflowClient

    uri = app.tracking_uri
    with _locks_lock:
        lock = _locks.setdefault(uri, threading.Lock())
    with lock:
        if uri not in _ready:
            MlflowClient(tracking_uri=uri, registry_uri=uri).search_registered_models(max_results=1)
            _ready.add(uri)


class Registry:
    """The MLflow model registry at ``tracking_uri``: what the server and the CLI show of
    models and what agents read and move (:class:`~scanflow.agents.interfaces.ModelRegistry`)."""

    def __init__(self, tracking_uri: str) -> None:
        self.uri = tracking_uri
        self._client: Any = None

    @property
    def client(self) -> Any:
        """The ``MlflowClient`` of this registry (made on first use)."""
        if self._client is None:
            from mlflow import MlflowClient

            self._client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
        return self._client

    def alias_version(self, model: str, alias: str) -> str | None:
        """The version ``model@alias`` points at (None when unset)."""
        from mlflow.exceptions import MlflowException

        try:
            return str(self.client.get_model_version_by_alias(model, alias).version)
        except MlflowException:
            return None

    def set_alias(self, model: str, alias: str, version: str) -> None:
        """Point ``model@alias`` at ``version``."""
        self.client.set_registered_model_alias(model, alias, str(version))

    def version_views(
        self, model: str, aliases: dict[str, str] | None = None, metrics: bool = False
    ) -> list[VersionView]:
        """Every version of ``model``, oldest first, with the ``aliases`` (alias -> version)
        pointing at it and, with ``metrics``, the metrics of the run that made it."""
        by_version: dict[str, list[str]] = {}
        for alias, version in (aliases or {}).items():
            by_version.setdefault(version, []).append(alias)
        found = [
            VersionView(
                version=str(v.version),
                run_id=v.run_id,
                source=v.source,
                status=v.status,
                created_at=v.creation_timestamp / 1000,
                aliases=sorted(by_version.get(str(v.version), [])),
                metrics=self._metrics(v.run_id) if metrics else {},
            )
            for v in self.client.search_model_versions(f"name = '{model}'")
        ]
        return sorted(found, key=lambda v: int(v.version))

    def versions(self, model: str) -> list[dict[str, Any]]:
        """Every version of ``model``, oldest first: version, run_id, source, created_at."""
        keep = {"version", "run_id", "source", "created_at"}
        return [v.model_dump(include=keep) for v in self.version_views(model)]

    def _metrics(self, run_id: str | None) -> dict[str, float]:
        if not run_id:
            return {}
        try:
            return dict(self.client.get_run(run_id).data.metrics)
        except Exception:  # noqa: BLE001 - a deleted run leaves the version shown
            log.debug("no run %s in %s", run_id, self.uri)
            return {}


def _client(app: AppHandle) -> Any:
    return _registry(app).client


def _registry(app: AppHandle) -> Registry:
    open_store(app)
    return Registry(app.tracking_uri)


def _served_names(app: AppHandle) -> set[str]:
    names = set()
    for service in app.project.app.services:
        if service.model.startswith("models:/"):
            names.add(service.model.removeprefix("models:/").split("@")[0].split("/")[0])
    return names


def _own_store(app: AppHandle) -> bool:
    from scanflow.tracking.config import embedded_tracking_uri

    return app.tracking_uri == embedded_tracking_uri(app.project.base_dir)


def model_names(app: AppHandle) -> list[str]:
    """The registered models ``app`` may see: all of its own embedded store's; on a shared
    tracking server those its services serve or tagged ``scanflow.team`` with its team."""
    with tracking_errors(app):
        registered = _client(app).search_registered_models(max_results=1000)
    if _own_store(app):
        return sorted(m.name for m in registered)
    served = _served_names(app)
    return sorted(
        m.name
        for m in registered
        if m.name in served or (m.tags or {}).get("scanflow.team") == app.team
    )


def _check_visible(app: AppHandle, name: str) -> None:
    if name not in model_names(app):
        raise NotFound(f"no model {name!r} in application {app.name!r}")


def list_models(app: AppHandle) -> list[ModelView]:
    """Every model ``app`` sees, with its aliases (no versions)."""
    out = []
    with tracking_errors(app):
        client = _client(app)
        for name in model_names(app):
            model = client.get_registered_model(name)
            versions = [int(v.version) for v in getattr(model, "latest_versions", []) or []]
            out.append(
                ModelView(
                    app=app.name,
                    name=name,
                    aliases={k: str(v) for k, v in (model.aliases or {}).items()},
                    latest_version=str(max(versions)) if versions else None,
                )
            )
    return out


def get_model(app: AppHandle, name: str) -> ModelView:
    """Model ``name`` with every version, its aliases and its run's metrics."""
    _check_visible(app, name)
    with tracking_errors(app):
        registry = _registry(app)
        model = registry.client.get_registered_model(name)
        aliases = {k: str(v) for k, v in (model.aliases or {}).items()}
        versions = registry.version_views(name, aliases, metrics=True)[::-1]
    return ModelView(
        app=app.name,
        name=name,
        aliases=aliases,
        latest_version=versions[0].version if versions else None,
        versions=versions,
    )


def move_alias(app: AppHandle, name: str, alias: str, version: str) -> ActionResult:
    """Point ``name@alias`` at ``version`` (promote one, or roll back to an older one)."""
    model = get_model(app, name)
    if version not in {v.version for v in model.versions}:
        raise NotFound(f"model {name!r} has no version {version!r}")
    if not alias or not alias.replace("-", "").replace("_", "").isalnum():
        raise Invalid(f"alias {alias!r} must be letters, digits, '-' or '_'")
    before = model.aliases.get(alias)
    with tracking_errors(app):
        _registry(app).set_alias(name, alias, version)
    log.info("%s@%s moved from %s to %s", name, alias, before, version)
    return ActionResult(message=f"{name}@{alias} -> version {version} (was {before or 'unset'})")
