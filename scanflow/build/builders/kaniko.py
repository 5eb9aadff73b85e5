"""The ``kaniko`` builder: builds in the cluster, rendered as a ConfigMap and a Job.

The build context travels as a gzipped tarball in the ConfigMap (``binaryData``, so at
most about 1 MiB: the wheel and the application's code, never data); the Job runs
kaniko's executor on ``tar://`` of that file and pushes to the registry itself, with the
credentials of the first ``kubernetes.image_pull_secrets`` entry when one is declared.
Nothing is submitted here: :meth:`KanikoBuilder.build` writes ``kaniko.yaml`` into the
context, to apply with ``kubectl apply -f``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import tarfile
from pathlib import Path
from typing import Any

import yaml

from scanflow.build.builders.base import Builder, BuildRequest
from scanflow.build.tools import LineCallback
from scanflow.errors import BuildError

KANIKO_IMAGE = "kaniko-project/executor:v1.23.2"  # build.kaniko_image names the mirror
MANIFEST = "kaniko.yaml"
CONTEXT_ARCHIVE = "context.tar.gz"
MAX_CONTEXT_BYTES = 1_000_000  # a ConfigMap holds at most 1 MiB
_MOUNT = "/workspace"


class KanikoBuilder(Builder):
    """Renders a kaniko Job per image; the cluster builds and pushes."""

    name = "kaniko"
    local = False

    def __init__(
        self,
        namespace: str = "default",
        pull_secret: str | None = None,
        image: str = KANIKO_IMAGE,
    ) -> None:
        self.namespace = namespace
        self.pull_secret = pull_secret
        self.image = image

    def check(self) -> None:
        try:
            import kubernetes  # noqa: F401
        except ImportError:
            raise BuildError(
                "the 'kaniko' builder renders Kubernetes objects with the 'kubernetes' "
                "package; install it (pip install kubernetes)"
            ) from None

    def exists(self, reference: str) -> bool:
        return False  # no local store: the registry is asked instead

    def build(self, request: BuildRequest, on_line: LineCallback | None = None) -> None:
        archive = context_archive(request.context)
        text = yaml.safe_dump_all(self.manifests(request, archive), sort_keys=False)
        (request.context / MANIFEST).write_text(text, encoding="utf-8")
        if on_line:
            on_line(f"rendered {request.context / MANIFEST}")

    def push(self, request: BuildRequest, on_line: LineCallback | None = None) -> str | None:
        return None  # the Job pushes

    def manifests(self, request: BuildRequest, archive: bytes) -> list[dict[str, Any]]:
        """The ConfigMap holding the context and the Job that builds it, as plain dicts."""
        from kubernetes import client
        from kubernetes.client import models as k8s

        if len(archive) > MAX_CONTEXT_BYTES:
            raise BuildError(
                f"the build context of {request.reference} is {len(archive)} bytes gzipped; "
                f"the kaniko builder carries it in a ConfigMap (at most {MAX_CONTEXT_BYTES}); "
                "keep data out of the application folder or use '--builder buildah'"
            )
        name = job_name(request.reference)
        labels = {"app.kubernetes.io/managed-by": "scanflow", "scanflow.io/build": name}
        config_map = k8s.V1ConfigMap(
            api_version="v1",
            kind="ConfigMap",
            metadata=k8s.V1ObjectMeta(name=name, namespace=self.namespace, labels=labels),
            binary_data={CONTEXT_ARCHIVE: base64.b64encode(archive).decode()},
        )
        args = [
            f"--context=tar://{_MOUNT}/{CONTEXT_ARCHIVE}",
            "--dockerfile=Dockerfile",
            f"--destination={request.reference}",
            "--digest-file=/dev/termination-log",
        ]
        if not request.tls_verify:
            args += ["--insecure", "--skip-tls-verify", "--insecure-pull", "--skip-tls-verify-pull"]
        mounts = [k8s.V1VolumeMount(name="context", mount_path=_MOUNT, read_only=True)]
        volumes = [k8s.V1Volume(name="context", config_map=k8s.V1ConfigMapVolumeSource(name=name))]
        if self.pull_secret:
            mounts.append(k8s.V1VolumeMount(name="registry", mount_path="/kaniko/.docker"))
            volumes.append(
                k8s.V1Volume(
                    name="registry",
                    secret=k8s.V1SecretVolumeSource(
                        secret_name=self.pull_secret,
                        items=[k8s.V1KeyToPath(key=".dockerconfigjson", path="config.json")],
                    ),
                )
            )
        container = k8s.V1Container(
            name="kaniko",
            image=self.image,
            args=args,
            volume_mounts=mounts,
            resources=k8s.V1ResourceRequirements(requests={"cpu": "500m", "memory": "1Gi"}),
        )
        job = k8s.V1Job(
            api_version="batch/v1",
            kind="Job",
            metadata=k8s.V1ObjectMeta(name=name, namespace=self.namespace, labels=labels),
            spec=k8s.V1JobSpec(
                backoff_limit=1,
                ttl_seconds_after_finished=3600,
                template=k8s.V1PodTemplateSpec(
                    metadata=k8s.V1ObjectMeta(labels=labels),
                    spec=k8s.V1PodSpec(
                        restart_policy="Never",
                        automount_service_account_token=False,
                        containers=[container],
                        volumes=volumes,
                    ),
                ),
            ),
        )
        serialize = client.ApiClient().sanitize_for_serialization
        return [serialize(config_map), serialize(job)]


def job_name(reference: str) -> str:
    """A DNS-1123 name for the build of ``reference``: ``build-<repository>-<hash>``."""
    repository = reference.rsplit("/", 1)[-1].split(":", 1)[0]
    slug = re.sub(r"[^a-z0-9-]+", "-", repository.lower()).strip("-")[:40].strip("-")
    digest = hashlib.sha256(reference.encode()).hexdigest()[:10]
    return f"build-{slug}-{digest}"


def context_archive(context: Path) -> bytes:
    """The context folder as a gzipped tarball with fixed times (rendered files excluded)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(context.rglob("*")):
            rel = path.relative_to(context)
            if rel.as_posix() in {MANIFEST, "build.log"}:
                continue
            info = tar.gettarinfo(str(path), arcname=rel.as_posix())
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "root", "root"
            if path.is_file():
                with path.open("rb") as handle:
                    tar.addfile(info, handle)
            else:
                tar.addfile(info)
    return buffer.getvalue()
