"""Building blocks shared by services, agents and the tracker: hardened containers,
Deployments and Services (typed models of the ``kubernetes`` client)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scanflow.kube.render.context import STATE_DIR

if TYPE_CHECKING:
    from kubernetes.client import (
        V1Affinity,
        V1Container,
        V1Deployment,
        V1EnvVar,
        V1Probe,
        V1ResourceRequirements,
        V1Service,
        V1Volume,
    )

    from scanflow.kube.render.context import Context
    from scanflow.spec.model import Resources

NON_ROOT_UID = 10001


def resources(spec: Resources | None) -> V1ResourceRequirements | None:
    """Requests from the spec's ``resources`` (memory and GPUs also as limits)."""
    from kubernetes.client import V1ResourceRequirements

    if spec is None:
        return None
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    if spec.cpu is not None:
        requests["cpu"] = str(spec.cpu)
    if spec.memory:
        requests["memory"] = limits["memory"] = spec.memory
    if spec.gpu:
        limits["nvidia.com/gpu"] = str(spec.gpu)
    if not requests and not limits:
        return None
    return V1ResourceRequirements(requests=requests or None, limits=limits or None)


def http_probe(path: str, port: str, period: int) -> V1Probe:
    from kubernetes.client import V1HTTPGetAction, V1Probe

    return V1Probe(
        http_get=V1HTTPGetAction(path=path, port=port),
        period_seconds=period,
        timeout_seconds=5,
        failure_threshold=3,
    )


def secret_env(name: str, secret: str, key: str) -> V1EnvVar:
    """An environment variable read from ``key`` of Secret ``secret``."""
    from kubernetes.client import V1EnvVar, V1EnvVarSource, V1SecretKeySelector

    return V1EnvVar(
        name=name,
        value_from=V1EnvVarSource(secret_key_ref=V1SecretKeySelector(name=secret, key=key)),
    )


def container(
    name: str,
    image: str,
    command: list[str],
    *,
    port: int,
    env: list[V1EnvVar] | None = None,
    probes: tuple[V1Probe, V1Probe] | None = None,
    spec_resources: V1ResourceRequirements | None = None,
    non_root: bool = True,
    mount: str | None = STATE_DIR,
) -> V1Container:
    """A container with an explicit command, one named port ``http`` and no privileges."""
    from kubernetes.client import (
        V1Capabilities,
        V1Container,
        V1ContainerPort,
        V1SecurityContext,
        V1VolumeMount,
    )

    return V1Container(
        name=name,
        image=image,
        command=command,
        ports=[V1ContainerPort(name="http", container_port=port)],
        env=env or None,
        readiness_probe=probes[0] if probes else None,
        liveness_probe=probes[1] if probes else None,
        resources=spec_resources,
        volume_mounts=[V1VolumeMount(name="state", mount_path=mount)] if mount else None,
        security_context=V1SecurityContext(
            allow_privilege_escalation=False,
            run_as_non_root=non_root or None,
            capabilities=V1Capabilities(drop=["ALL"]),
        ),
    )


def deployment(
    ctx: Context,
    name: str,
    component: str,
    kind: str,
    main: V1Container,
    *,
    replicas: int,
    service_account: str | None = None,
    affinity: V1Affinity | None = None,
    volumes: list[V1Volume] | None = None,
    non_root: bool = True,
) -> V1Deployment:
    """A Deployment of ``main`` selecting its pods by application, component and kind."""
    from kubernetes.client import (
        V1DeploymentSpec,
        V1EmptyDirVolumeSource,
        V1LabelSelector,
        V1LocalObjectReference,
        V1ObjectMeta,
        V1PodSecurityContext,
        V1PodSpec,
        V1PodTemplateSpec,
        V1SeccompProfile,
        V1Volume,
    )

    if volumes is None and main.volume_mounts:
        volumes = [V1Volume(name="state", empty_dir=V1EmptyDirVolumeSource())]
    secrets = ctx.app.kubernetes.image_pull_secrets
    pod = V1PodSpec(
        containers=[main],
        service_account_name=service_account,
        automount_service_account_token=service_account is not None,
        affinity=affinity,
        volumes=volumes,
        image_pull_secrets=[V1LocalObjectReference(name=s) for s in secrets] or None,
        security_context=V1PodSecurityContext(
            run_as_non_root=non_root or None,
            run_as_user=NON_ROOT_UID if non_root else None,
            fs_group=NON_ROOT_UID if non_root else None,
            seccomp_profile=V1SeccompProfile(type="RuntimeDefault"),
        ),
    )
    from kubernetes.client import V1Deployment

    return V1Deployment(
        api_version="apps/v1",
        kind="Deployment",
        metadata=ctx.meta(name, component, kind),
        spec=V1DeploymentSpec(
            replicas=replicas,
            selector=V1LabelSelector(match_labels=ctx.selector(component, kind)),
            template=V1PodTemplateSpec(
                metadata=V1ObjectMeta(labels=ctx.labels(component, kind)), spec=pod
            ),
        ),
    )


def service(
    ctx: Context,
    name: str,
    component: str,
    kind: str,
    port: int,
    *,
    selector_kind: str | None = None,
    headless: bool = False,
) -> V1Service:
    """A ClusterIP Service on ``port`` to the pods' ``http`` port."""
    from kubernetes.client import V1Service, V1ServicePort, V1ServiceSpec

    spec: dict[str, Any] = {
        "selector": ctx.selector(component, selector_kind or kind),
        "ports": [V1ServicePort(name="http", port=port, target_port="http")],
    }
    if headless:
        spec["cluster_ip"] = "None"
    return V1Service(
        api_version="v1",
        kind="Service",
        metadata=ctx.meta(name, component, kind),
        spec=V1ServiceSpec(**spec),
    )
