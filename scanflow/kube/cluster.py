"""Connecting to a cluster: the user's kubeconfig (a context may be named) or, inside a pod,
the in-cluster configuration; every failure is a :class:`~scanflow.errors.KubeError` that
says what to fix, and every refused request names its verb and resource."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scanflow.errors import KubeConflict, KubeError

if TYPE_CHECKING:
    from kubernetes.client import ApiClient
    from kubernetes.dynamic import DynamicClient

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 10.0  # seconds to wait for the API server's /version


@dataclass
class Cluster:
    """One cluster: the typed API client and a dynamic client (for any kind, CRDs too)."""

    api: ApiClient
    context: str | None
    host: str
    _dynamic: DynamicClient | None = field(default=None, repr=False)

    @property
    def dynamic(self) -> DynamicClient:
        """The dynamic client (discovery is done once, on first use)."""
        if self._dynamic is None:
            from kubernetes.dynamic import DynamicClient

            self._dynamic = call(lambda: DynamicClient(self.api), "discover", "API resources")
        return self._dynamic

    def resource(self, api_version: str, kind: str) -> Any:
        """The dynamic resource for ``kind``; a missing kind (e.g. a CRD not installed) is a
        :class:`KubeError` naming it."""
        from kubernetes.dynamic.exceptions import ResourceNotFoundError

        try:
            return self.dynamic.resources.get(api_version=api_version, kind=kind)
        except ResourceNotFoundError:
            raise KubeError(
                f"the cluster at {self.host} has no {kind} ({api_version}): its "
                "CustomResourceDefinition is not installed"
            ) from None


def _kubeconfig_path(kubeconfig: str | Path | None) -> Path:
    if kubeconfig:
        return Path(kubeconfig).expanduser()
    first = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    return Path(first).expanduser() if first else Path.home() / ".kube" / "config"


def connect(
    context: str | None = None, kubeconfig: str | Path | None = None, *, probe: bool = True
) -> Cluster:
    """Connect to the cluster of ``context`` in ``kubeconfig`` (default: $KUBECONFIG or
    ~/.kube/config, its current context); inside a pod with no kubeconfig, the in-cluster
    configuration. With ``probe``, the API server must answer /version."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException
    from yaml import YAMLError

    path = _kubeconfig_path(kubeconfig)
    configuration = client.Configuration()
    if not path.exists() and not kubeconfig and os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config(client_configuration=configuration)
        context = None
    else:
        if not path.exists():
            raise KubeError(
                f"no kubeconfig at {path}: set KUBECONFIG or pass --kubeconfig "
                "(for the test cluster: scripts/k8s-sim up, then scripts/k8s-sim kubeconfig)"
            )
        try:
            contexts, _ = config.list_kube_config_contexts(config_file=str(path))
            names = [c["name"] for c in contexts or []]
            if context is not None and context not in names:
                raise KubeError(
                    f"kubeconfig {path} has no context {context!r} "
                    f"(its contexts: {', '.join(names) or 'none'})"
                )
            config.load_kube_config(
                config_file=str(path), context=context, client_configuration=configuration
            )
        except ConfigException as exc:
            raise KubeError(f"kubeconfig {path} cannot be used: {exc}") from None
        except (OSError, ValueError, TypeError, KeyError, YAMLError) as exc:
            raise KubeError(f"kubeconfig {path} is not a valid kubeconfig: {exc}") from None
    cluster = Cluster(client.ApiClient(configuration), context, configuration.host)
    if probe:
        try:
            client.VersionApi(cluster.api).get_code(_request_timeout=PROBE_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - any failure means: not reachable
            raise KubeError(
                f"the cluster at {configuration.host} (context {context or 'current'}) "
                f"is not reachable: {_reason(exc)}; is it running and is the kubeconfig current?"
            ) from None
    log.debug("connected to %s", configuration.host)
    return cluster


def _reason(exc: BaseException) -> str:
    text = str(getattr(exc, "reason", None) or exc)
    return text.splitlines()[0][:300] if text else type(exc).__name__


def refusal(exc: Exception, verb: str, what: str) -> KubeError:
    """The :class:`KubeError` for a failed request ``verb`` on ``what`` (e.g.
    "deployments 'web' in namespace 'team-app'"): RBAC refusals name both, conflicts
    become :class:`KubeConflict`, invalid objects carry the API server's message."""
    import json

    status = getattr(exc, "status", None)
    body = getattr(exc, "body", None)
    message = _reason(exc)
    if body:
        try:
            message = json.loads(body).get("message", message)
        except (ValueError, AttributeError):
            message = str(body)[:500]
    if status == 403:
        return KubeError(f"forbidden: cannot {verb} {what}: {message} (check the RBAC rules)")
    if status == 409:
        return KubeConflict(f"conflict on {verb} {what}: {message}")
    if status == 422:
        return KubeError(f"{what} is invalid: {message}")
    if status == 404:
        return KubeError(f"cannot {verb} {what}: not found ({message})")
    if status is None:
        return KubeError(f"cannot {verb} {what}: the cluster did not answer: {message}")
    return KubeError(f"cannot {verb} {what}: HTTP {status}: {message}")


def call(request: Any, verb: str, what: str) -> Any:
    """``request()``, with any API failure turned into :func:`refusal`'s error."""
    from kubernetes.client.exceptions import ApiException
    from kubernetes.dynamic.exceptions import DynamicApiError
    from urllib3.exceptions import HTTPError

    try:
        return request()
    except (ApiException, DynamicApiError, HTTPError, OSError) as exc:
        raise refusal(exc, verb, what) from None
