"""The control server deployed on the test cluster with a managed tracker: its objects as
the API server keeps them, a second deploy that changes nothing, and what its account may do
(kwok's fake nodes run no containers, so the objects are checked, not the process)."""

from __future__ import annotations

import uuid

from scanflow.kube.names import namespace_of
from scanflow.kube.render import render
from scanflow.spec import load_project

from .test_deploy import IMAGE, cli, live

SERVER = "scanflow-server"


def _can(k8s_cluster, namespace: str, verb: str, resource: str, where: str | None = None) -> bool:
    """Whether the server's ServiceAccount may ``verb`` ``resource`` (``GROUP:RESOURCE`` or
    ``RESOURCE``, with ``/SUBRESOURCE``), as the API server's authorizer answers."""
    from kubernetes import client

    group, _, rest = resource.rpartition(":")
    name, _, sub = rest.partition("/")
    review = client.V1SubjectAccessReview(
        spec=client.V1SubjectAccessReviewSpec(
            user=f"system:serviceaccount:{namespace}:{SERVER}",
            resource_attributes=client.V1ResourceAttributes(
                namespace=where or namespace, verb=verb, group=group, resource=name,
                subresource=sub or None,
            ),
        )
    )  # fmt: skip
    api = client.AuthorizationV1Api(k8s_cluster.api_client())
    return bool(api.create_subject_access_review(review).status.allowed)


def test_the_server_deploys_once_on_the_trackers_database_with_least_privilege(
    k8s_cluster, tmp_path, capsys
) -> None:
    folder = tmp_path / "ctl"
    folder.mkdir()
    name = f"ctl-{uuid.uuid4().hex[:6]}"
    (folder / "scanflow.yaml").write_text(f"name: {name}\nteam: ops\ntracker: {{managed: true}}\n")
    project = load_project(folder)
    namespace = namespace_of(project.app)
    total = len(render(project, {"*": IMAGE.split("=", 1)[1]}))
    try:
        capsys.readouterr()
        assert cli(k8s_cluster, project, "deploy", "--image", IMAGE) == 0
        assert f"{total} objects ({total} created)" in capsys.readouterr().out
        found = live(k8s_cluster, project)
        for kind in ("Deployment", "Service", "ServiceAccount", "Role", "RoleBinding"):
            assert f"{kind}/{SERVER}" in found
        pod = found[f"Deployment/{SERVER}"]["spec"]["template"]["spec"]
        [main] = pod["containers"]
        env = {e["name"]: e for e in main["env"]}
        assert env["SCANFLOW_DB_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": "tracker-db",
            "key": "password",
        }
        assert env["SCANFLOW_STORE_URI"]["value"].endswith("@tracker-db:5432/$(SCANFLOW_DB_NAME)")
        assert main["readinessProbe"]["httpGet"]["path"] == "/api/health"
        assert pod["serviceAccountName"] == SERVER
        password = k8s_cluster.kubectl(
            "get", "secret", "tracker-db", "-n", namespace, "-o", "jsonpath={.data.password}"
        ).stdout
        assert password and password not in str(found[f"Deployment/{SERVER}"])

        assert cli(k8s_cluster, project, "deploy", "--image", IMAGE) == 0
        assert f"{total} objects ({total} unchanged)" in capsys.readouterr().out

        assert _can(k8s_cluster, namespace, "patch", "apps:deployments/scale")
        assert _can(k8s_cluster, namespace, "create", "argoproj.io:workflows")
        assert _can(k8s_cluster, namespace, "get", "pods/log")
        assert not _can(k8s_cluster, namespace, "get", "secrets")
        assert not _can(k8s_cluster, namespace, "patch", "services")
        assert not _can(k8s_cluster, namespace, "delete", "apps:deployments")
        assert not _can(k8s_cluster, namespace, "patch", "apps:deployments/scale", where="default")
    finally:
        assert cli(k8s_cluster, project, "delete") == 0
    assert live(k8s_cluster, project) == {}
