"""The managed tracker stack on a cluster (``tracker: {managed: true}``): MLflow (Deployment +
Service), PostgreSQL (StatefulSet + PVC + Service) and an S3 store (SeaweedFS Deployment +
Service, or the external ``s3_endpoint``), with generated credentials in Secrets."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scanflow.kube.render.context import TRACKER_PORT
from scanflow.kube.render.secrets import generated
from scanflow.kube.render.workloads import container, deployment, http_probe, secret_env, service

if TYPE_CHECKING:
    from scanflow.kube.render.context import Context

DB, S3, MLFLOW = "tracker-db", "tracker-s3", "mlflow"  # object names
DB_PORT, S3_PORT = 5432, 8333
DB_SIZE = "5Gi"


def _database(ctx: Context) -> list[object]:
    from kubernetes.client import (
        V1LabelSelector,
        V1ObjectMeta,
        V1PersistentVolumeClaim,
        V1PersistentVolumeClaimSpec,
        V1PersistentVolumeClaimVolumeSource,
        V1PodSpec,
        V1PodTemplateSpec,
        V1StatefulSet,
        V1StatefulSetSpec,
        V1Volume,
        V1VolumeResourceRequirements,
    )

    db = container(
        "postgres",
        ctx.image("postgres"),
        ["docker-entrypoint.sh", "postgres"],
        port=DB_PORT,
        env=[
            secret_env("POSTGRES_USER", DB, "username"),
            secret_env("POSTGRES_PASSWORD", DB, "password"),
            secret_env("POSTGRES_DB", DB, "database"),
        ],
        non_root=False,  # the postgres image drops to its own user itself
        mount="/var/lib/postgresql/data",
    )
    if db.security_context is not None:  # its entrypoint changes owners, then user
        db.security_context.capabilities = None
    pod = V1PodSpec(
        containers=[db],
        automount_service_account_token=False,
        volumes=[
            V1Volume(
                name="state",
                persistent_volume_claim=V1PersistentVolumeClaimVolumeSource(claim_name=DB),
            )
        ],
    )
    return [
        V1PersistentVolumeClaim(
            api_version="v1",
            kind="PersistentVolumeClaim",
            metadata=ctx.meta(DB, DB, "tracker"),
            spec=V1PersistentVolumeClaimSpec(
                access_modes=["ReadWriteOnce"],
                resources=V1VolumeResourceRequirements(requests={"storage": DB_SIZE}),
            ),
        ),
        V1StatefulSet(
            api_version="apps/v1",
            kind="StatefulSet",
            metadata=ctx.meta(DB, DB, "tracker"),
            spec=V1StatefulSetSpec(
                replicas=1,
                service_name=DB,
                selector=V1LabelSelector(match_labels=ctx.selector(DB, "tracker")),
                template=V1PodTemplateSpec(
                    metadata=V1ObjectMeta(labels=ctx.labels(DB, "tracker")), spec=pod
                ),
            ),
        ),
        service(ctx, DB, DB, "tracker", DB_PORT),
    ]


def _store(ctx: Context) -> list[object]:
    command = [
        "weed",
        "server",
        "-dir=/data",
        f"-s3.port={S3_PORT}",
        "-s3",
        "-s3.config=/etc/seaweedfs/s3.json",
    ]
    main = container(
        "s3",
        ctx.image("s3"),
        [
            "sh",
            "-c",
            'printf \'{"identities":[{"name":"scanflow","credentials":[{"accessKey":"%s",'
            '"secretKey":"%s"}],"actions":["Admin","Read","Write","List","Tagging"]}]}\' '
            '"$S3_ACCESS_KEY" "$S3_SECRET_KEY" > /tmp/s3.json && exec '
            + " ".join(command).replace("/etc/seaweedfs/s3.json", "/tmp/s3.json"),
        ],
        port=S3_PORT,
        env=[
            secret_env("S3_ACCESS_KEY", S3, "access-key"),
            secret_env("S3_SECRET_KEY", S3, "secret-key"),
        ],
        mount="/data",
    )
    return [
        deployment(ctx, S3, S3, "tracker", main, replicas=1),
        service(ctx, S3, S3, "tracker", S3_PORT),
    ]


def render(ctx: Context) -> list[object]:
    """The tracker stack's objects; none when the tracker is not managed."""
    tracker = ctx.app.tracker
    if tracker is None or not tracker.managed:
        return []
    from kubernetes.client import V1EnvVar

    endpoint = tracker.s3_endpoint or f"http://{S3}:{S3_PORT}"
    objects: list[object] = [
        generated(ctx, DB, DB, {"username": "mlflow", "database": "mlflow", "password": None}),
        *_database(ctx),
    ]
    if tracker.s3_endpoint:  # the external store's keys are the user's to create
        keys = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
        s3_env = [secret_env(k, S3, k.lower().replace("_", "-")) for k in keys]
    else:
        objects += [generated(ctx, S3, S3, {"access-key": None, "secret-key": None}), *_store(ctx)]
        s3_env = [
            secret_env("AWS_ACCESS_KEY_ID", S3, "access-key"),
            secret_env("AWS_SECRET_ACCESS_KEY", S3, "secret-key"),
        ]
    server = (
        f"exec mlflow server --host 0.0.0.0 --port {TRACKER_PORT} --workers {tracker.workers} "
        f'--backend-store-uri "postgresql://$DB_USER:$DB_PASSWORD@{DB}:{DB_PORT}/$DB_NAME" '
        f"--artifacts-destination s3://{tracker.s3_bucket} --serve-artifacts"
    )
    main = container(
        "mlflow",
        ctx.image("tracker"),
        ["sh", "-c", server],
        port=TRACKER_PORT,
        env=[
            secret_env("DB_USER", DB, "username"),
            secret_env("DB_PASSWORD", DB, "password"),
            secret_env("DB_NAME", DB, "database"),
            *s3_env,
            V1EnvVar(name="MLFLOW_S3_ENDPOINT_URL", value=endpoint),
        ],
        probes=(http_probe("/health", "http", 10), http_probe("/health", "http", 20)),
        mount="/tmp",
    )
    return [
        *objects,
        deployment(ctx, MLFLOW, MLFLOW, "tracker", main, replicas=1),
        service(ctx, MLFLOW, MLFLOW, "tracker", TRACKER_PORT),
    ]
