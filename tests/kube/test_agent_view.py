"""What agents read of a service on a cluster, as pure functions: a Deployment's status, and
the autoscale rule's view of a failed scale (held while the pods cannot start)."""

from __future__ import annotations

from scanflow.agents.strategies.autoscale import AutoscaleConfig, held_until, stuck
from scanflow.kube.services import deployment_status


def body(replicas: int | None, ready: int | None) -> dict:
    spec: dict = {"template": {"spec": {"containers": [{"image": "registry.example/d:1"}]}}}
    if replicas is not None:
        spec["replicas"] = replicas
    return {"spec": spec, "status": {} if ready is None else {"readyReplicas": ready}}


def test_a_deployment_is_ready_with_one_ready_pod() -> None:
    assert deployment_status(body(3, 1)) == {
        "ready": True,
        "workers": 3,
        "ready_workers": 1,
        "model_version": None,
        "image": "registry.example/d:1",
    }
    assert deployment_status(body(2, None))["ready"] is False  # no pod ready yet
    assert deployment_status(body(0, None))["ready"] is False  # scaled to zero
    assert deployment_status(body(None, 1))["workers"] == 1  # the API's default


def scale(status: str, workers: int = 2, target: int = 3, at: float = 10.0) -> dict:
    return {
        "action": "scale",
        "status": status,
        "created_at": at,
        "finished_at": at + 1,
        "evidence": {"workers": workers, "target": target},
    }


def test_a_failed_scale_is_not_retried_while_the_pods_cannot_start() -> None:
    broken = {"problems": ["pod p: ErrImagePull: the image cannot be pulled"]}
    assert stuck(broken, [scale("failed")]) is True
    assert stuck({"problems": []}, [scale("failed")]) is False  # fixed: scale again
    assert stuck(broken, []) is False  # never tried: the first try is allowed
    assert stuck(broken, [scale("failed"), scale("succeeded", at=20)]) is False
    blocked = {**scale("failed"), "status": "blocked"}
    assert stuck(broken, [scale("failed", at=5), blocked]) is True  # blocks are not tries


def test_a_failed_scale_up_holds_nothing_back() -> None:
    config = AutoscaleConfig(service="s", settle=30)
    assert held_until([scale("failed")], config) is None
    until, why = held_until([scale("succeeded")], config)
    assert (until, why) == (41.0, "the last scale-up is settling")
