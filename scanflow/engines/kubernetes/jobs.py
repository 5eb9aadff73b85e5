"""A run as Kubernetes Jobs, for clusters without Argo: one parent ConfigMap per run that
holds the run's plan and owns its Jobs (deleting it removes them), one Job per step
(retries: ``backoffLimit``; timeout: ``activeDeadlineSeconds``), and the reading of a
step's state back from its Job."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from scanflow.engines.kubernetes.steps import RUN_LABEL, StepPlan
from scanflow.kube.apply import to_dict
from scanflow.kube.names import dns_label, labels_of
from scanflow.kube.render.placement import batch_affinity
from scanflow.spec.model import Application

CANCEL_ANNOTATION = "scanflow.io/cancel"
ROUND_LABEL = "scanflow.io/round"  # 0 for a run's first submission, +1 per resume
PLAN_KEY = "plan.json"


def parent_name(run_id: str) -> str:
    """The name of the run's parent ConfigMap."""
    return dns_label("scanflow-run", run_id)


def job_name(run_id: str, step: str, round_: int) -> str:
    """The Job of ``step`` in round ``round_`` of run ``run_id``."""
    return dns_label(run_id, step, f"r{round_}")


def parent_plan(
    app: Application, run_id: str, namespace: str, plans: list[StepPlan], round_: int
) -> list[dict]:
    """What the driver runs: each step's name, upstream steps and Job (no owner yet)."""
    return [
        {
            "name": p.name,
            "depends_on": p.depends_on,
            "job": render_job(app, run_id, namespace, p, round_),
        }
        for p in plans
    ]


def render_parent(app: Application, run_id: str, namespace: str, plan: list[dict]) -> dict:
    """The run's parent ConfigMap: labels, and the plan of :func:`parent_plan`."""
    from kubernetes.client import V1ConfigMap, V1ObjectMeta

    labels = {**labels_of(app, kind="run"), RUN_LABEL: dns_label(run_id)}
    return to_dict(
        V1ConfigMap(
            api_version="v1",
            kind="ConfigMap",
            metadata=V1ObjectMeta(name=parent_name(run_id), namespace=namespace, labels=labels),
            data={PLAN_KEY: json.dumps(plan)},
        )
    )


def render_job(app: Application, run_id: str, namespace: str, plan: StepPlan, round_: int) -> dict:
    """The Job of one step (the driver adds the owner reference to the run's parent)."""
    from kubernetes import client as k

    labels = {**plan.labels, ROUND_LABEL: str(round_)}
    affinity = batch_affinity(app)
    container = k.V1Container(
        name=plan.key,
        image=plan.image,
        command=plan.command,
        args=plan.args,
        env=[k.V1EnvVar(name=n, value=v) for n, v in sorted(plan.env.items())],
        resources=k.V1ResourceRequirements(requests=plan.requests or None),
    )
    pod = k.V1PodSpec(
        restart_policy="Never",
        containers=[container],
        node_selector=plan.node_selector or None,
        affinity=affinity,
        image_pull_secrets=[
            k.V1LocalObjectReference(name=s) for s in app.kubernetes.image_pull_secrets
        ]
        or None,
    )
    job = k.V1Job(
        api_version="batch/v1",
        kind="Job",
        metadata=k.V1ObjectMeta(
            name=job_name(run_id, plan.name, round_),
            namespace=namespace,
            labels=labels,
        ),
        spec=k.V1JobSpec(
            backoff_limit=plan.retries,
            active_deadline_seconds=math.ceil(plan.timeout) if plan.timeout else None,
            template=k.V1PodTemplateSpec(
                metadata=k.V1ObjectMeta(labels=labels, annotations=plan.annotations or None),
                spec=pod,
            ),
        ),
    )
    return to_dict(job)


@dataclass(frozen=True)
class JobState:
    """What a step's Job says: ``status`` (running, succeeded, failed), attempts so far."""

    status: str
    attempts: int
    message: str = ""
    started: float | None = None
    finished: float | None = None


def _stamp(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        from datetime import datetime

        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value.timestamp()


def job_state(job: dict[str, Any]) -> JobState:
    """The state of a Job (a dict as the API returns it)."""
    status = job.get("status") or {}
    attempts = int(status.get("failed") or 0) + int(status.get("succeeded") or 0)
    attempts += int(status.get("active") or 0)
    started, finished = _stamp(status.get("startTime")), _stamp(status.get("completionTime"))
    for condition in status.get("conditions") or []:
        if condition.get("status") != "True":
            continue
        if condition.get("type") == "Complete":
            return JobState("succeeded", attempts, "", started, finished)
        if condition.get("type") == "Failed":
            reason = condition.get("reason") or "Failed"
            message = condition.get("message") or ""
            when = _stamp(condition.get("lastTransitionTime"))
            failed = int(status.get("failed") or 0)
            text = f"{reason}: {message} ({failed} pod(s) failed)".replace(":  (", " (")
            return JobState("failed", attempts, text, started, when)
    return JobState("running", attempts, "", started, None)
