"""Deploying an application's manifests: the namespace claimed first (refused when it is not
ours), then every object by server-side apply, in order, each reported as it goes. Secrets
that exist are kept as they are (generated credentials are never replaced)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from scanflow.errors import KubeError
from scanflow.kube.apply import Applied, apply, claim_namespace, describe, to_dict
from scanflow.kube.cluster import call

if TYPE_CHECKING:
    from scanflow.kube.cluster import Cluster

log = logging.getLogger(__name__)


def _secret_exists(cluster: Cluster, body: dict[str, Any]) -> str | None:
    """The resourceVersion of the live Secret of ``body``, or None when there is none."""
    from kubernetes.dynamic.exceptions import NotFoundError

    meta = body["metadata"]
    resource = cluster.resource("v1", "Secret")

    def get() -> Any:
        try:
            return cluster.dynamic.get(resource, name=meta["name"], namespace=meta["namespace"])
        except NotFoundError:
            return None

    found = call(get, "get", describe(body))
    return None if found is None else found.metadata.resourceVersion


def deploy(
    cluster: Cluster,
    objects: Sequence[Any],
    *,
    force: bool = False,
    dry_run: bool = False,
    on_applied: Callable[[Applied], None] | None = None,
) -> list[Applied]:
    """Apply ``objects`` (the namespace first, as :func:`~scanflow.kube.render.render` gives
    them); ``dry_run``: the API server checks each one and stores nothing. A failure is a
    :class:`KubeError` that also says what was applied before it."""
    done: list[Applied] = []
    bodies = [to_dict(o) for o in objects]
    if dry_run:
        namespaces = {b["metadata"].get("namespace") for b in bodies} - {None}
        missing = {n for n in namespaces if not namespace_exists(cluster, n)}
        if missing:  # the API server refuses objects of a namespace that does not exist
            log.info("namespace(s) %s not there yet: only cluster objects are checked", missing)
            bodies = [b for b in bodies if b["metadata"].get("namespace") not in missing]
    try:
        for body in bodies:
            meta = body["metadata"]
            if body["kind"] == "Namespace":
                result = claim_namespace(cluster, meta["name"], meta["labels"], dry_run=dry_run)
            elif body["kind"] == "Secret" and (version := _secret_exists(cluster, body)):
                result = Applied("Secret", meta["name"], meta["namespace"], "unchanged", version)
            else:
                result = apply(cluster, body, force=force, dry_run=dry_run)
            done.append(result)
            if on_applied is not None:
                on_applied(result)
    except KubeError as exc:
        if not done:
            raise
        changed = [f"{a.kind} {a.name!r} {a.action}" for a in done if a.action != "unchanged"]
        summary = f"{len(done)} of {len(bodies)} objects were applied before it"
        if changed and not dry_run:
            summary += f" ({', '.join(changed)})"
        raise type(exc)(f"{exc}\n{summary}; run the same deploy again once fixed") from None
    return done


def namespace_exists(cluster: Cluster, name: str) -> bool:
    """Whether namespace ``name`` exists."""
    from kubernetes.dynamic.exceptions import NotFoundError

    resource = cluster.resource("v1", "Namespace")

    def get() -> bool:
        try:
            cluster.dynamic.get(resource, name=name)
        except NotFoundError:
            return False
        return True

    return call(get, "get", f"namespace {name!r}")
