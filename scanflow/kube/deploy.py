"""Deploying an application's manifests: the namespace claimed first (refused when it is not
ours), then every other object by server-side apply, several at once (:data:`APPLY_WORKERS`),
each reported in the order given. Secrets that exist are kept as they are (generated
credentials are never replaced)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from scanflow.errors import KubeError
from scanflow.kube.apply import Applied, apply, claim_namespace, describe, to_dict
from scanflow.kube.cluster import call

if TYPE_CHECKING:
    from scanflow.kube.cluster import Cluster

log = logging.getLogger(__name__)

APPLY_WORKERS = 8  # objects applied at once after the namespace (each apply is 2 requests)


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


def _apply_one(cluster: Cluster, body: dict[str, Any], force: bool, dry_run: bool) -> Applied:
    meta = body["metadata"]
    if body["kind"] == "Namespace":
        return claim_namespace(cluster, meta["name"], meta["labels"], dry_run=dry_run)
    if body["kind"] == "Secret" and (version := _secret_exists(cluster, body)):
        return Applied("Secret", meta["name"], meta["namespace"], "unchanged", version)
    return apply(cluster, body, force=force, dry_run=dry_run)


def deploy(
    cluster: Cluster,
    objects: Sequence[Any],
    *,
    force: bool = False,
    dry_run: bool = False,
    on_applied: Callable[[Applied], None] | None = None,
) -> list[Applied]:
    """Apply ``objects``: the namespaces first, one by one, then the rest at once (up to
    :data:`APPLY_WORKERS` in flight); results (and ``on_applied`` calls) keep the order of
    ``objects``. ``dry_run``: the API server checks each one and stores nothing. A failure
    is a :class:`KubeError` that also says how many objects were applied and which changed;
    objects not yet sent when it happened are not sent."""
    bodies = [to_dict(o) for o in objects]
    if dry_run:
        namespaces = {b["metadata"].get("namespace") for b in bodies} - {None}
        missing = {n for n in namespaces if not namespace_exists(cluster, n)}
        if missing:  # the API server refuses objects of a namespace that does not exist
            log.info("namespace(s) %s not there yet: only cluster objects are checked", missing)
            bodies = [b for b in bodies if b["metadata"].get("namespace") not in missing]
    first = [b for b in bodies if b["kind"] == "Namespace"]
    rest = [b for b in bodies if b["kind"] != "Namespace"]
    done: list[Applied] = []

    def report(result: Applied) -> None:
        done.append(result)
        if on_applied is not None:
            on_applied(result)

    try:
        for body in first:
            report(_apply_one(cluster, body, force, dry_run))
        for body in rest:  # discovery is not thread-safe: resolve every kind here, once
            cluster.resource(body["apiVersion"], body["kind"])
        failure = _apply_at_once(cluster, rest, force, dry_run, report)
        if failure is not None:
            raise failure
    except KubeError as exc:
        if not done:
            raise
        changed = [f"{a.kind} {a.name!r} {a.action}" for a in done if a.action != "unchanged"]
        summary = f"{len(done)} of {len(bodies)} objects were applied before it"
        if changed and not dry_run:
            summary += f" ({', '.join(changed)})"
        raise type(exc)(f"{exc}\n{summary}; run the same deploy again once fixed") from None
    return done


def _apply_at_once(
    cluster: Cluster,
    bodies: list[dict[str, Any]],
    force: bool,
    dry_run: bool,
    report: Callable[[Applied], None],
) -> KubeError | None:
    """Apply ``bodies`` in a thread pool, ``report`` each applied one in their order, and
    return the first failure (in that order), if any: from then on, objects not yet sent
    are not sent, and those in flight are still reported."""
    failure: KubeError | None = None
    with ThreadPoolExecutor(APPLY_WORKERS, thread_name_prefix="apply") as pool:
        futures = [pool.submit(_apply_one, cluster, body, force, dry_run) for body in bodies]
        for future in futures:
            try:
                result = future.result()
            except CancelledError:
                continue
            except KubeError as exc:
                if failure is None:
                    failure = exc
                    for later in futures:
                        later.cancel()
                continue
            except BaseException:
                for later in futures:
                    later.cancel()
                raise
            report(result)
    return failure


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
