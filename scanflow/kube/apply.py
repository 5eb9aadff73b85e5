"""Server-side apply of typed objects, as field manager ``scanflow``.

Objects are built with the ``kubernetes`` client's models (or are plain dicts for custom
kinds); :func:`apply` sends each one as an apply patch, so a second apply of the same
object changes nothing, and fields another manager owns are a
:class:`~scanflow.errors.KubeConflict` unless ``force`` is asked.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from scanflow.errors import KubeConflict, KubeError
from scanflow.kube.cluster import call
from scanflow.kube.names import AGENT_MANAGER, APPLICATION, MANAGED_BY, MANAGER

if TYPE_CHECKING:
    from scanflow.kube.cluster import Cluster

log = logging.getLogger(__name__)

Action = Literal["created", "configured", "unchanged"]


@dataclass(frozen=True)
class Applied:
    """What one apply did to one object."""

    kind: str
    name: str
    namespace: str | None
    action: Action
    resource_version: str | None


def to_dict(obj: Any) -> dict[str, Any]:
    """A typed model (or a dict) as the JSON the API server takes, without empty fields."""
    if isinstance(obj, dict):
        return obj
    from kubernetes.client import ApiClient

    return ApiClient().sanitize_for_serialization(obj)


def describe(body: dict[str, Any]) -> str:
    """``kind 'name' in namespace 'ns'`` for messages."""
    meta = body.get("metadata", {})
    where = f" in namespace {meta['namespace']!r}" if meta.get("namespace") else ""
    return f"{body.get('kind', 'object')} {meta.get('name')!r}{where}"


def _current(cluster: Cluster, resource: Any, name: str, namespace: str | None) -> Any:
    from kubernetes.dynamic.exceptions import NotFoundError

    try:
        return cluster.dynamic.get(resource, name=name, namespace=namespace).to_dict()
    except NotFoundError:
        return None


def _content(obj: dict[str, Any]) -> dict[str, Any]:
    """What an apply may change in ``obj``: everything but its status and the metadata
    others write (versions, managed fields, annotations controllers add); labels kept."""
    meta = obj.get("metadata", {})
    rest = {k: v for k, v in obj.items() if k not in ("metadata", "status")}
    return {**rest, "labels": meta.get("labels"), "owners": meta.get("ownerReferences")}


def _action(before: dict[str, Any] | None, after: dict[str, Any], dry_run: bool) -> Action:
    if before is None:
        return "created"
    version = lambda o: o["metadata"].get("resourceVersion")  # noqa: E731
    if not dry_run and version(after) == version(before):
        return "unchanged"  # the API server wrote nothing
    # written, by this apply or by a controller in between (status): judge the content
    return "unchanged" if _content(after) == _content(before) else "configured"


def apply(cluster: Cluster, obj: Any, *, force: bool = False, dry_run: bool = False) -> Applied:
    """Server-side apply ``obj``; ``dry_run``: the API server validates it and stores nothing."""
    body = to_dict(obj)
    meta = body.get("metadata") or {}
    name, namespace = str(meta.get("name") or ""), meta.get("namespace")
    if not name:
        raise KubeError(f"cannot apply {describe(body)}: it has no metadata.name")
    what = describe(body)
    resource = cluster.resource(body["apiVersion"], body["kind"])
    before = call(lambda: _current(cluster, resource, name, namespace), "get", what)
    options: dict[str, Any] = {"field_manager": MANAGER, "force_conflicts": force}
    if dry_run:
        options["dry_run"] = "All"
    send = lambda: call(  # noqa: E731
        lambda: cluster.dynamic.server_side_apply(
            resource, body=body, namespace=namespace, **options
        ),
        "apply",
        what,
    )
    try:
        try:
            result = send()
        except KubeConflict as exc:
            if not only_agents(str(exc)):
                raise
            # an agent's live change (replicas, route): the declared state takes it back
            log.info("%s: taking back fields an agent changed", what)
            options["force_conflicts"] = True
            result = send()
    except KubeConflict as exc:
        raise KubeConflict(
            f"{exc}; another field manager owns these fields: nothing was changed "
            "(re-run with --force-conflicts to take them over)"
        ) from None
    after = result.to_dict()
    action = _action(before, after, dry_run)
    log.info("%s %s", what, action)
    return Applied(body["kind"], name, namespace, action, after["metadata"].get("resourceVersion"))


def only_agents(conflict: str) -> bool:
    """Whether every manager named in a conflict message is Scanflow's agents'."""
    managers = set(re.findall(r'conflicts? with "([^"]+)"', conflict))
    return bool(managers) and managers <= {AGENT_MANAGER}


def owned_by(obj: Any, application: str) -> bool:
    """Whether a live object carries Scanflow's labels for ``application``."""
    labels = (obj.metadata.labels or {}) if obj is not None else {}
    return labels.get(MANAGED_BY) == MANAGER and labels.get(APPLICATION) == application


def claim_namespace(
    cluster: Cluster, name: str, labels: dict[str, str], *, dry_run: bool = False
) -> Applied:
    """Create (or keep) namespace ``name`` for the application in ``labels``; a namespace
    that exists and is not that application's is refused, never taken over."""
    from kubernetes.dynamic.exceptions import NotFoundError

    resource = cluster.resource("v1", "Namespace")

    def existing() -> Any:
        try:
            return cluster.dynamic.get(resource, name=name)
        except NotFoundError:
            return None

    found = call(existing, "get", f"namespace {name!r}")
    if found is not None and not owned_by(found, labels[APPLICATION]):
        raise KubeError(
            f"namespace {name!r} exists and is not Scanflow's for application "
            f"{labels[APPLICATION]!r} (it lacks the labels {MANAGED_BY}={MANAGER}, "
            f"{APPLICATION}={labels[APPLICATION]}); choose another with "
            "'kubernetes: {namespace: ...}' in scanflow.yaml"
        )
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}
    return apply(cluster, body, dry_run=dry_run)
