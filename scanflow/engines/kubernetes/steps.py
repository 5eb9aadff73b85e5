"""What every step pod of a run is, whichever engine creates it: image, explicit command,
parameters, inputs as tracker URIs, environment, resources, labels and placement.

A step's inputs are never paths on a shared disk: each is the URI
``scanflow://<run id>/<step>/<output>`` of an upstream output, which the step's container
(:mod:`scanflow.engines.kubernetes.step_main`) resolves through the tracker.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from scanflow.build.content import APP_DIR  # where a step image holds the application
from scanflow.engines.local.engine import step_parameters, thread_limits
from scanflow.errors import EngineError
from scanflow.kube.names import dns_label, labels_of
from scanflow.spec.graph import InputSource, resolve_input, topological_order, upstreams
from scanflow.spec.model import Application, Executor, Workflow

RUN_LABEL = "scanflow.io/run"
STEP_LABEL = "scanflow.io/step"
ENTRY = ["python", "-m", "scanflow.engines.kubernetes.step_main"]
URI_SCHEME = "scanflow://"


@dataclass(frozen=True)
class PodOverrides:
    """Extra settings for one step's pod: annotations and a node selector."""

    annotations: dict[str, str] = field(default_factory=dict)
    node_selector: dict[str, str] = field(default_factory=dict)


PodHook = Callable[[Executor], PodOverrides]
"""Called for each step as its pod is rendered (e.g. to pin some steps to some nodes)."""


@dataclass(frozen=True)
class StepPlan:
    """One step as the cluster runs it."""

    name: str  # the executor's name
    key: str  # its name as a DNS label (template, task and Job names)
    depends_on: list[str]
    image: str
    command: list[str]
    args: list[str]
    env: dict[str, str]
    requests: dict[str, str]
    retries: int
    retry_backoff: float
    timeout: float | None
    labels: dict[str, str]
    annotations: dict[str, str]
    node_selector: dict[str, str]


def default_image(app: Application, executor: Executor) -> str:
    """The image of ``executor``: ``<registry>/<team>-<application>-<executor>:latest``."""
    registry = (app.build.registry or "localhost").rstrip("/")
    return f"{registry}/{dns_label(app.team, app.name, executor.name)}:latest"


def step_uri(run_id: str, step: str, output: str) -> str:
    """The URI by which a downstream step reads output ``output`` of ``step``."""
    return f"{URI_SCHEME}{run_id}/{step}/{output}"


def parse_step_uri(uri: str) -> tuple[str, str, str]:
    """``(run id, step, output)`` of a :func:`step_uri`."""
    parts = uri.removeprefix(URI_SCHEME).split("/")
    if not uri.startswith(URI_SCHEME) or len(parts) != 3 or not all(parts):
        raise EngineError(f"{uri!r} is not a step output URI ({URI_SCHEME}RUN/STEP/OUTPUT)")
    return parts[0], parts[1], parts[2]


def argument_value(value: Any) -> str:
    """A parameter value as one word that reads back as YAML: strings as they are."""
    return value if isinstance(value, str) else json.dumps(value)


def step_labels(app: Application, workflow: str, run_id: str | None, step: str) -> dict:
    """The labels of a step's pod (and Job): the application's, the run's, the step's."""
    labels = {**labels_of(app, component=workflow, kind="step"), STEP_LABEL: dns_label(step)}
    if run_id and not run_id.startswith("{{"):
        labels[RUN_LABEL] = dns_label(run_id)
    return labels


def run_parameters(workflow: Workflow, parameters: dict[str, Any]) -> dict[str, str]:
    """The workflow-level parameters of a run as Argo workflow parameters (strings)."""
    values = {**workflow.parameters, **{k: v for k, v in parameters.items() if "." not in k}}
    return {k: argument_value(v) for k, v in values.items() if k in workflow.parameters}


def _requests(executor: Executor) -> dict[str, str]:
    res = executor.resources
    out = {}
    if res.cpu is not None:
        out["cpu"] = f"{res.cpu:g}" if isinstance(res.cpu, float) else str(res.cpu)
    if res.memory is not None:
        out["memory"] = res.memory
    if res.gpu:
        out["nvidia.com/gpu"] = str(res.gpu)
    return out


def _input_uris(run_id: str, wf: Workflow, edges: dict, executor: Executor) -> dict[str, str]:
    uris = {}
    for arg, ref in executor.input_refs().items():
        source = resolve_input(wf, edges, executor.name, ref)
        if not isinstance(source, InputSource):
            raise EngineError(f"step {executor.name!r}: {source}")
        uris[arg] = step_uri(run_id, source.step, source.output)
    return uris


def plan_run(
    app: Application,
    workflow: str,
    run_id: str,
    parameters: dict[str, Any],
    *,
    image_of: Callable[[Application, Executor], str] = default_image,
    tracking_uri: str | None = None,
    pod_hook: PodHook | None = None,
    only: set[str] | None = None,
    by_reference: bool = False,
) -> list[StepPlan]:
    """The steps of ``workflow`` in dependency order (``only``: just these, with their
    dependencies on other steps dropped: they already succeeded). ``by_reference``
    (Argo): workflow-level parameters are passed as ``{{workflow.parameters.NAME}}``; a
    ``run_id`` of
    ``{{workflow.name}}`` renders a template that any submission can reuse."""
    wf = app.workflow(workflow)
    edges = upstreams(wf)
    plans = []
    for name in topological_order(edges):
        if only is not None and name not in only:
            continue
        executor = wf.executor(name)
        args = ["--workflow", wf.name, "--step", name, "--run-id", run_id]
        for key, value in sorted(step_parameters(wf, executor, parameters).items()):
            shared = key in wf.parameters and key not in executor.parameters
            if by_reference and shared and f"{name}.{key}" not in parameters:
                value = "{{workflow.parameters." + key + "}}"
            args += ["--param", f"{key}={argument_value(value)}"]
        for arg, uri in sorted(_input_uris(run_id, wf, edges, executor).items()):
            args += ["--input", f"{arg}={uri}"]
        env = {**thread_limits(executor), **executor.env, "SCANFLOW_APP_DIR": APP_DIR}
        if tracking_uri:
            env["MLFLOW_TRACKING_URI"] = tracking_uri
        extra = pod_hook(executor) if pod_hook else PodOverrides()
        plans.append(
            StepPlan(
                name=name,
                key=dns_label(name),
                depends_on=sorted(d for d in edges[name] if only is None or d in only),
                image=image_of(app, executor),
                command=list(ENTRY),
                args=args,
                env=env,
                requests=_requests(executor),
                retries=executor.retries,
                retry_backoff=executor.retry_backoff,
                timeout=executor.timeout,
                labels=step_labels(app, wf.name, run_id, name),
                annotations=dict(extra.annotations),
                node_selector=dict(extra.node_selector),
            )
        )
    return plans


def anti_affinity(app: Application) -> dict[str, Any] | None:
    """Keeps batch pods off the nodes that serve online traffic (see
    :func:`scanflow.kube.render.placement.batch_affinity`), as the API's JSON."""
    from scanflow.kube.apply import to_dict
    from scanflow.kube.render.placement import batch_affinity

    affinity = batch_affinity(app)
    return to_dict(affinity) if affinity is not None else None
