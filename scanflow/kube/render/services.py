"""An online service on a cluster: Deployment (pods run ``scanflow serve``), Service,
HorizontalPodAutoscaler and PodDisruptionBudget, and the backup model as a second
Deployment that the Service's selector can be switched to (failover)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scanflow.build.content import APP_DIR
from scanflow.kube.names import dns_label
from scanflow.kube.render.context import SERVE_PORT, STATE_DIR
from scanflow.kube.render.placement import serving_affinity
from scanflow.kube.render.secrets import TOKEN_SECRET
from scanflow.kube.render.workloads import (
    container,
    deployment,
    http_probe,
    resources,
    secret_env,
    service,
)

if TYPE_CHECKING:
    from kubernetes.client import V1Deployment

    from scanflow.kube.render.context import Context
    from scanflow.spec.model import Service

PRIMARY, BACKUP = "service", "backup"  # the scanflow.io/kind of each Deployment's pods
CPU_TARGET = 70  # percent of requested CPU the HPA aims at (on clusters with metrics)


def names(spec: Service) -> dict[str, str]:
    """Object names of service ``spec``: ``primary`` (Deployment, Service, HPA, PDB) and
    ``backup`` (the backup model's Deployment)."""
    return {"primary": dns_label(spec.name), "backup": dns_label(spec.name, "backup")}


def replicas(spec: Service) -> int:
    """Pods at first deploy: ``workers`` when a number, else ``min_workers``."""
    return spec.workers if isinstance(spec.workers, int) else spec.min_workers


def serve_command(ctx: Context, spec: Service, model: str) -> list[str]:
    """The ``scanflow serve`` command of one pod serving ``model`` (one worker per pod:
    replicas are pods)."""
    pod = spec.model_copy(
        update={
            "model": model,
            "backup_model": None,
            "workers": 1,
            "min_workers": 1,
            "max_workers": 1,
            "port": SERVE_PORT,
        }
    )
    command = [
        "scanflow",
        "--app",
        APP_DIR,
        "serve",
        model,
        "--host",
        "0.0.0.0",
        "--port",
        str(SERVE_PORT),
        "--state-dir",
        STATE_DIR,
        "--spec-json",
        pod.model_dump_json(exclude_defaults=True),
    ]
    uri = ctx.tracking_uri()
    if uri:
        command += ["--tracking-uri", uri]
    return command


def _deployment(ctx: Context, spec: Service, name: str, kind: str, model: str) -> V1Deployment:
    main = container(
        "serve",
        ctx.image(spec.name, "service"),
        serve_command(ctx, spec, model),
        port=SERVE_PORT,
        env=[secret_env("SCANFLOW_TOKEN", TOKEN_SECRET, "token")],
        probes=(
            http_probe("/v2/health/ready", "http", 5),
            http_probe("/v2/health/live", "http", 10),
        ),
        spec_resources=resources(spec.resources),
    )
    return deployment(
        ctx,
        name,
        spec.name,
        kind,
        main,
        replicas=replicas(spec) if kind == PRIMARY else 1,
        affinity=serving_affinity(ctx.app),
    )


def render(ctx: Context, spec: Service) -> list[object]:
    """Every object of service ``spec``."""
    from kubernetes.client import (
        V1LabelSelector,
        V1PodDisruptionBudget,
        V1PodDisruptionBudgetSpec,
        V2CrossVersionObjectReference,
        V2HorizontalPodAutoscalerSpec,
        V2MetricSpec,
        V2MetricTarget,
        V2ResourceMetricSource,
    )
    from kubernetes.client import (
        V2HorizontalPodAutoscaler as HPA,
    )

    name = names(spec)
    objects: list[object] = [
        _deployment(ctx, spec, name["primary"], PRIMARY, spec.model),
        service(ctx, name["primary"], spec.name, PRIMARY, spec.port or SERVE_PORT),
        HPA(
            api_version="autoscaling/v2",
            kind="HorizontalPodAutoscaler",
            metadata=ctx.meta(name["primary"], spec.name, PRIMARY),
            spec=V2HorizontalPodAutoscalerSpec(
                scale_target_ref=V2CrossVersionObjectReference(
                    api_version="apps/v1", kind="Deployment", name=name["primary"]
                ),
                min_replicas=spec.min_workers,
                max_replicas=max(spec.max_workers, spec.min_workers),
                metrics=[
                    V2MetricSpec(
                        type="Resource",
                        resource=V2ResourceMetricSource(
                            name="cpu",
                            target=V2MetricTarget(
                                type="Utilization", average_utilization=CPU_TARGET
                            ),
                        ),
                    )
                ],
            ),
        ),
        V1PodDisruptionBudget(
            api_version="policy/v1",
            kind="PodDisruptionBudget",
            metadata=ctx.meta(name["primary"], spec.name, PRIMARY),
            spec=V1PodDisruptionBudgetSpec(
                max_unavailable=1,
                selector=V1LabelSelector(match_labels=ctx.selector(spec.name, PRIMARY)),
            ),
        ),
    ]
    if spec.backup_model:
        objects.append(_deployment(ctx, spec, name["backup"], BACKUP, spec.backup_model))
    return objects
