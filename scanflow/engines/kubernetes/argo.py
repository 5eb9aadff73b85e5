"""A workflow as Argo objects, built with ``hera``: a Workflow per run, a WorkflowTemplate
per workflow, a CronWorkflow per schedule. Every template is a container with an explicit
``command``; outputs travel by tracker URI in parameters (see :mod:`.steps`), so no
template declares Argo outputs."""

from __future__ import annotations

import math
from typing import Any

from scanflow.engines.kubernetes.steps import StepPlan, anti_affinity, run_parameters
from scanflow.kube.names import dns_label, labels_of
from scanflow.spec.model import Application

API_VERSION = "argoproj.io/v1alpha1"
ENTRYPOINT = "dag"
TEMPLATE_RUN_ID = "{{workflow.name}}"  # the run id inside a WorkflowTemplate's steps


def _container(plan: StepPlan, affinity: dict[str, Any] | None) -> Any:
    from hera.workflows import Container, Env, RetryStrategy
    from hera.workflows import models as m

    retry = None
    if plan.retries:
        retry = RetryStrategy(
            limit=str(plan.retries),
            retry_policy="Always",
            backoff=m.Backoff(duration=f"{plan.retry_backoff:g}s", factor=m.IntOrString("2")),
        )
    return Container(
        name=plan.key,
        image=plan.image,
        command=plan.command,
        args=plan.args,
        env=[Env(name=k, value=v) for k, v in sorted(plan.env.items())],
        resources=m.ResourceRequirements(
            requests={k: m.Quantity(v) for k, v in plan.requests.items()} or None
        ),
        retry_strategy=retry,
        active_deadline_seconds=str(math.ceil(plan.timeout)) if plan.timeout else None,
        labels=plan.labels,
        annotations=plan.annotations or None,
        node_selector=plan.node_selector or None,
        affinity=m.Affinity.model_validate(affinity) if affinity else None,
    )


def _build(kind: type, app: Application, plans: list[StepPlan], **fields: Any) -> dict:
    from hera.workflows import DAG, Parameter, Task

    arguments = fields.pop("parameters", {})
    affinity = anti_affinity(app)
    with kind(
        entrypoint=ENTRYPOINT,
        arguments=[Parameter(name=k, value=v) for k, v in arguments.items()] or None,
        image_pull_secrets=list(app.kubernetes.image_pull_secrets) or None,
        **fields,
    ) as workflow:
        containers = {plan.name: _container(plan, affinity) for plan in plans}
        keys = {plan.name: plan.key for plan in plans}
        with DAG(name=ENTRYPOINT):
            for plan in plans:
                Task(
                    name=plan.key,
                    template=containers[plan.name],
                    dependencies=[keys[d] for d in plan.depends_on] or None,
                )
    return workflow.to_dict()


def render_workflow(
    app: Application,
    workflow: str,
    plans: list[StepPlan],
    parameters: dict[str, Any],
    namespace: str,
    labels: dict[str, str],
) -> dict:
    """The Workflow of one run (``generateName``: the cluster picks its name)."""
    from hera.workflows import Workflow

    return _build(
        Workflow,
        app,
        plans,
        generate_name=f"{dns_label(app.name, workflow, limit=52)}-",
        namespace=namespace,
        labels=labels,
        parameters=run_parameters(app.workflow(workflow), parameters),
    )


def render_workflow_template(
    app: Application, workflow: str, plans: list[StepPlan], namespace: str
) -> dict:
    """A WorkflowTemplate of ``workflow`` (plans made with the run id
    :data:`TEMPLATE_RUN_ID`), submittable again and again with other parameters."""
    from hera.workflows import WorkflowTemplate

    return _build(
        WorkflowTemplate,
        app,
        plans,
        name=dns_label(app.name, workflow),
        namespace=namespace,
        labels=labels_of(app, component=workflow, kind="workflow"),
        parameters=run_parameters(app.workflow(workflow), {}),
    )


def render_cron_workflow(
    app: Application,
    workflow: str,
    plans: list[StepPlan],
    namespace: str,
    schedule: str,
    *,
    timezone: str | None = None,
    name: str | None = None,
    parameters: dict[str, Any] | None = None,
    concurrency_policy: str = "Forbid",
    starting_deadline_seconds: int | None = None,
    suspend: bool = False,
) -> dict:
    """A CronWorkflow that runs ``workflow`` on ``schedule`` (cron syntax or ``@every``),
    by default never two at once; ``name`` defaults to ``<app>-<workflow>-cron``."""
    from hera.workflows import CronWorkflow

    return _build(
        CronWorkflow,
        app,
        plans,
        name=name or dns_label(app.name, workflow, "cron"),
        namespace=namespace,
        labels=labels_of(app, component=workflow, kind="schedule"),
        parameters=run_parameters(app.workflow(workflow), parameters or {}),
        schedules=[schedule],
        timezone=timezone,
        concurrency_policy=concurrency_policy,
        starting_deadline_seconds=starting_deadline_seconds,
        cron_suspend=suspend or None,
    )
