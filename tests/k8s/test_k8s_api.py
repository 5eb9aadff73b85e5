"""The API server's own semantics: validation, CRD schemas with server-side apply, RBAC with
TokenRequest tokens."""

from __future__ import annotations

import json

import pytest

from .k8s_support import ArgoController, K8sCluster


@pytest.fixture(scope="module")
def api(k8s_cluster: K8sCluster):
    client = k8s_cluster.api_client()
    yield client
    client.close()


def _namespace(api, prefix: str) -> str:
    from kubernetes import client

    return (
        client.CoreV1Api(api)
        .create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(generate_name=prefix)))
        .metadata.name
    )


def _refusal(call, *args) -> tuple[int, str]:
    """Status and message of the ApiException that ``call(*args)`` must raise."""
    from kubernetes.client.exceptions import ApiException

    with pytest.raises(ApiException) as err:
        call(*args)
    return err.value.status, json.loads(err.value.body)["message"]


def test_invalid_object_is_refused_with_the_api_servers_message(api) -> None:
    from kubernetes import client

    ns = _namespace(api, "invalid-")
    bad = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "Bad_Name"},
        "spec": {
            "replicas": -1,
            "selector": {"matchLabels": {"app": "x"}},
            "template": {
                "metadata": {"labels": {"app": "y"}},
                "spec": {"containers": [{"name": "c", "image": "i"}]},
            },
        },
    }
    status, message = _refusal(client.AppsV1Api(api).create_namespaced_deployment, ns, bad)
    assert status == 422
    assert message.startswith('Deployment.apps "Bad_Name" is invalid:')
    assert 'metadata.name: Invalid value: "Bad_Name"' in message
    assert "spec.replicas: Invalid value: -1: must be greater than or equal to 0" in message
    assert "spec.template.metadata.labels: Invalid value" in message
    assert "`selector` does not match template `labels`" in message


@pytest.fixture(scope="module")
def workflow_crd(api, argo: ArgoController) -> str:
    """A namespace in which Workflows can be created: Argo's CRDs (the ones the session's
    controller was built with) are applied and Established by ``argo up``."""
    return _namespace(api, "argo-")


def _workflow(name: str, spec: dict | None) -> dict:
    body = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"name": name}}
    if spec is not None:
        body["spec"] = spec
    return body


VALID_SPEC = {
    "entrypoint": "train",
    "parallelism": 2,
    "templates": [
        {
            "name": "train",
            "container": {"image": "registry.invalid/train:1", "command": ["python", "train.py"]},
        }
    ],
}


def test_valid_workflow_is_stored(api, workflow_crd: str) -> None:
    from kubernetes import client

    co = client.CustomObjectsApi(api)
    args = ("argoproj.io", "v1alpha1", workflow_crd, "workflows")
    co.create_namespaced_custom_object(*args, _workflow("ok", VALID_SPEC))
    stored = co.get_namespaced_custom_object(*args, "ok")
    assert stored["spec"]["templates"][0]["container"]["image"] == "registry.invalid/train:1"
    assert stored["spec"]["parallelism"] == 2


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            {**VALID_SPEC, "parallelism": "many"},
            'spec.parallelism: Invalid value: "string": '
            "spec.parallelism in body must be of type integer",
        ),
        (
            {
                **VALID_SPEC,
                "templates": [
                    {
                        "name": "train",
                        "container": {
                            "image": "registry.invalid/train:1",
                            "command": ["python", "train.py"],
                            "resources": {"limits": {"cpu": "lots"}},
                        },
                    }
                ],
            },
            'spec.templates[0].container.resources.limits.cpu: Invalid value: "lots": '
            "spec.templates[0].container.resources.limits.cpu in body should match",
        ),
        (None, "spec: Required value"),
    ],
    ids=["parallelism-string", "cpu-not-a-quantity", "no-spec"],
)
def test_invalid_workflow_is_refused(
    api, workflow_crd: str, spec: dict | None, expected: str
) -> None:
    from kubernetes import client

    status, message = _refusal(
        client.CustomObjectsApi(api).create_namespaced_custom_object,
        "argoproj.io",
        "v1alpha1",
        workflow_crd,
        "workflows",
        _workflow("bad", spec),
    )
    assert status == 422
    assert message.startswith('Workflow.argoproj.io "bad" is invalid:')
    assert expected in message


@pytest.fixture(scope="module")
def scaler(api) -> dict:
    """Namespaces A and B each with Deployment ``api``; in A a ServiceAccount whose Role may
    only patch deployments/scale; a TokenRequest token for it."""
    from kubernetes import client

    core, apps, rbac = (
        client.CoreV1Api(api),
        client.AppsV1Api(api),
        client.RbacAuthorizationV1Api(api),
    )
    team, other = _namespace(api, "team-"), _namespace(api, "other-")
    for ns in (team, other):
        apps.create_namespaced_deployment(
            ns,
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "api"},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"app": "api"}},
                    "template": {
                        "metadata": {"labels": {"app": "api"}},
                        "spec": {"containers": [{"name": "c", "image": "i"}]},
                    },
                },
            },
        )
    core.create_namespaced_service_account(team, {"metadata": {"name": "scaler"}})
    rbac.create_namespaced_role(
        team,
        {
            "metadata": {"name": "deploy-scaler"},
            "rules": [
                {"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["patch"]}
            ],
        },
    )
    rbac.create_namespaced_role_binding(
        team,
        {
            "metadata": {"name": "deploy-scaler"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "deploy-scaler",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "scaler", "namespace": team}],
        },
    )
    token = core.create_namespaced_service_account_token(
        "scaler", team, {"spec": {"expirationSeconds": 600}}
    ).status.token
    return {"team": team, "other": other, "token": token}


def test_token_request_token_authenticates_as_the_service_account(k8s_cluster, scaler) -> None:
    from kubernetes import client

    with k8s_cluster.token_client(scaler["token"]) as sa:
        review = client.AuthenticationV1Api(sa).create_self_subject_review({})
    assert review.status.user_info.username == f"system:serviceaccount:{scaler['team']}:scaler"


def test_role_allows_patching_deployments_scale_in_its_namespace(k8s_cluster, scaler) -> None:
    from kubernetes import client

    with k8s_cluster.token_client(scaler["token"]) as sa:
        scale = client.AppsV1Api(sa).patch_namespaced_deployment_scale(
            "api", scaler["team"], {"spec": {"replicas": 2}}
        )
    assert scale.spec.replicas == 2


FORBIDDEN = {
    "patch scale in another namespace": lambda a, s: client_apps(
        a
    ).patch_namespaced_deployment_scale("api", s["other"], {"spec": {"replicas": 2}}),
    "get scale": lambda a, s: client_apps(a).read_namespaced_deployment_scale("api", s["team"]),
    "patch the deployment itself": lambda a, s: client_apps(a).patch_namespaced_deployment(
        "api", s["team"], {"spec": {"replicas": 3}}
    ),
    "get deployment": lambda a, s: client_apps(a).read_namespaced_deployment("api", s["team"]),
    "list pods": lambda a, s: client_core(a).list_namespaced_pod(s["team"]),
    "delete pods": lambda a, s: client_core(a).delete_collection_namespaced_pod(s["team"]),
    "create configmap": lambda a, s: client_core(a).create_namespaced_config_map(
        s["team"], {"metadata": {"name": "x"}}
    ),
    "list namespaces": lambda a, s: client_core(a).list_namespace(),
    "list deployments in all namespaces": lambda a, s: client_apps(
        a
    ).list_deployment_for_all_namespaces(),
}


def client_apps(api):
    from kubernetes import client

    return client.AppsV1Api(api)


def client_core(api):
    from kubernetes import client

    return client.CoreV1Api(api)


@pytest.mark.parametrize("action", list(FORBIDDEN))
def test_anything_else_is_forbidden(k8s_cluster, scaler, action: str) -> None:
    from kubernetes.client.exceptions import ApiException

    with k8s_cluster.token_client(scaler["token"]) as sa, pytest.raises(ApiException) as err:
        FORBIDDEN[action](sa, scaler)
    assert err.value.status == 403
    body = json.loads(err.value.body)
    assert body["reason"] == "Forbidden"
    assert f'User "system:serviceaccount:{scaler["team"]}:scaler" cannot' in body["message"]
