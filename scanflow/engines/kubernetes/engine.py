"""The Kubernetes engine: workflow runs on a cluster, as Argo Workflows or as a DAG of Jobs.

Each run is recorded in the project's store (engine ``kubernetes``, with the cluster object
that carries it in ``engine_ref``: kind, name, namespace, and for a run of Jobs the local
process that drives it under ``driver``; each attempt's ``engine_ref`` names its pod);
``watch``, ``get_run`` and ``logs`` read the live state from the cluster, so a command that
detached from a run can attach again at any time.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from scanflow.engines.base import ServiceBackend
from scanflow.engines.events import StepEvent
from scanflow.engines.kubernetes import argo, jobs
from scanflow.engines.kubernetes.argo_state import run_phase, step_states
from scanflow.engines.kubernetes.pods import (
    IMAGE_PULL_GRACE,
    QUOTA_WORDS,
    delete_unfinished_pods,
    last_exit,
    pull_failure,
    record_attempts,
    run_pods,
)
from scanflow.engines.kubernetes.record import (
    failure_message,
    finish_run,
    record_states,
    skip_or_cancel_rest,
)
from scanflow.engines.kubernetes.steps import (
    RUN_LABEL,
    STEP_LABEL,
    PodHook,
    default_image,
    plan_run,
)
from scanflow.engines.local.engine import apply_overrides, new_run_id
from scanflow.errors import EngineError, KubeError
from scanflow.kube.cluster import Cluster, call, connect
from scanflow.kube.names import MANAGER, dns_label, labels_of, namespace_of
from scanflow.spec.loader import Project
from scanflow.spec.model import Application, Executor
from scanflow.store import DONE_OK, TERMINAL, RunRecord, StepRecord, Store
from scanflow.store.store import now

log = logging.getLogger(__name__)

POLL_SECONDS = 0.3
RAN = ("succeeded",)  # a step state reached only by running
DRIVER = "driver"  # the key of a Jobs run's driver process in its engine_ref
FLAVOURS = ("argo", "jobs")
NO_ARGO = (
    "the cluster at {host} has no Argo Workflows (the CustomResourceDefinition "
    "workflows.argoproj.io is not installed): install Argo, or run on plain Kubernetes Jobs "
    "with 'kubernetes: {{workflow_engine: jobs}}' in scanflow.yaml or '--engine jobs'"
)


class KubernetesEngine:
    """Runs the workflows of one project on the cluster of ``kubernetes.context``."""

    name = "kubernetes"

    def __init__(
        self,
        project: Project,
        *,
        engine: str | None = None,
        kubeconfig: str | Path | None = None,
        context: str | None = None,
        store: Store | None = None,
        tracking: bool = True,
        tracking_uri: str | None = None,
        image_of: Callable[[Application, Executor], str] | None = None,
        pod_hook: PodHook | None = None,
        image_pull_grace: float = IMAGE_PULL_GRACE,
        on_event: Callable[[StepEvent], None] | None = None,
    ) -> None:
        """``engine``: ``argo`` or ``jobs`` (default: ``kubernetes.workflow_engine``);
        ``on_event``: sees every event :meth:`watch` yields (as the local engine's does);
        ``tracking_uri``: the tracker the step pods log to (it must be reachable from
        the cluster); ``pod_hook``: extra pod settings per step; ``image_pull_grace``:
        seconds a step's pod may fail to pull its image before the step fails."""
        self.project = project
        self.flavour = engine or project.app.kubernetes.workflow_engine
        if self.flavour not in FLAVOURS:
            raise EngineError(f"unknown workflow engine {self.flavour!r}; use argo or jobs")
        self.kubeconfig = str(kubeconfig) if kubeconfig else None
        self.context = context or project.app.kubernetes.context
        self.store = store or Store.for_state_dir(project.state_dir)
        self.tracking_uri = tracking_uri or (_cluster_tracker(project.app) if tracking else None)
        self.image_of = image_of
        self.pod_hook = pod_hook
        self.image_pull_grace = image_pull_grace
        self.on_event = on_event
        self._cluster: Cluster | None = None
        self._services: ServiceBackend | None = None

    @property
    def cluster(self) -> Cluster:
        """The cluster (connected on first use: an unreachable one is a clear error)."""
        if self._cluster is None:
            self._cluster = connect(self.context, self.kubeconfig)
        return self._cluster

    # -- the engine protocol ----------------------------------------------------------
    def submit(
        self,
        workflow: str,
        parameters: dict[str, Any] | None = None,
        *,
        max_parallel: int | None = None,
        use_cache: bool = True,
    ) -> str:
        """Create the run's objects on the cluster, then record it; returns its id. Nothing
        is recorded when the cluster refuses the run."""
        app = self.project.app
        app.check(self.project.base_dir)
        wf = app.workflow(workflow)
        params = apply_overrides(wf, parameters or {})
        run_id = new_run_id(wf.name)
        namespace = namespace_of(app)
        from scanflow.kube.apply import claim_namespace

        claim_namespace(self.cluster, namespace, labels_of(app))
        plans = self._plans(app, wf.name, run_id, params)
        steps = [
            StepRecord(run_id=run_id, name=p.name, status="pending", depends_on=p.depends_on)
            for p in plans
        ]
        if self.flavour == "argo":
            ref = self._create_workflow(app, wf.name, run_id, params, plans, max_parallel)
        else:
            ref = self._create_parent(app, run_id, namespace, plans, 0)
        ref["image_pull_grace"] = self.image_pull_grace
        record = RunRecord(
            id=run_id,
            app=app.name,
            team=app.team,
            workflow=wf.name,
            status="running",
            parameters=params,
            spec=app.to_yaml(),
            base_dir=str(self.project.base_dir),
            run_dir=str(self.project.state_dir / "runs" / run_id),
            tracking_uri=self.tracking_uri,
            engine=self.name,
            engine_ref=ref,
            created_at=now(),
            started_at=now(),
        )
        self.store.add_run(record, steps)
        if self.flavour == "jobs":
            self._start_driver(run_id)
        log.info("run %s submitted as %s %s/%s", run_id, ref["kind"], namespace, ref["name"])
        return run_id

    def watch(self, run_id: str) -> Iterator[StepEvent]:
        """The run's events from its start until it ends (live state from the cluster)."""
        for event in self._events(run_id):
            if self.on_event is not None:
                self.on_event(event)
            yield event

    def _events(self, run_id: str) -> Iterator[StepEvent]:
        run = self.store.get_run(run_id)
        yield StepEvent(run.id, "", "running", message=f"run {run.id} started")
        seen: dict[str, tuple[str, str]] = {}
        ended_before = {s.name for s in self.store.steps(run.id) if s.status in TERMINAL}
        while True:
            run = self.get_run(run.id)
            for step in self.store.steps(run.id):
                now_state = (step.status, step.error or "")
                before = seen.get(step.name, ("pending", ""))
                if before != now_state:
                    seen[step.name] = now_state
                    if (
                        before[0] == "pending"
                        and step.status in RAN
                        and step.name not in ended_before
                    ):
                        # it started and ended between two polls: say it ran, as it did
                        yield StepEvent(run.id, step.name, "running")
                    duration = (
                        step.finished_at - step.started_at
                        if step.finished_at and step.started_at and step.status in TERMINAL
                        else None
                    )
                    yield StepEvent(run.id, step.name, step.status, 0, duration, step.error or "")
            if run.status in TERMINAL:
                yield StepEvent(run.id, "", run.status, message=run.error or "")
                return
            if self._interrupted(run):
                yield StepEvent(run.id, "", "interrupted", message="its driver process is gone")
                return
            time.sleep(POLL_SECONDS)

    def get_run(self, run_id: str) -> RunRecord:
        """The run's record, brought up to date with the cluster while it goes on."""
        run = self.store.get_run(run_id)
        if run.status not in TERMINAL and (run.engine_ref or {}).get("kind") == "Workflow":
            self._sync_workflow(run)
            run = self.store.get_run(run.id)
        return run

    def cancel(self, run_id: str) -> None:
        """Stop the run: Argo terminates its Workflow, and the run's pods that have not
        ended are deleted, so their containers stop whether or not Argo's signal reaches
        them; the Jobs engine deletes its Jobs (and their pods). A finished run is left as
        it is."""
        run = self.store.get_run(run_id)
        if run.status in TERMINAL:
            return
        ref = dict(run.engine_ref or {})
        if ref.get("kind") == "Workflow":
            ref["cancelled"] = True
            self.store.update_run(run.id, engine_ref=ref)
            self._patch(ref, {"spec": {"shutdown": "Terminate"}}, "merge")
            delete_unfinished_pods(self.cluster, ref["namespace"], run.id)
            return
        self._patch(ref, {"metadata": {"annotations": {jobs.CANCEL_ANNOTATION: "true"}}}, "merge")
        from scanflow.engines.kubernetes.driver import delete_jobs

        delete_jobs(self.cluster, ref["namespace"], run.id)
        if self._interrupted(run):  # no driver to finish it: finish it here
            skip_or_cancel_rest(self.store, run.id, self.store.steps(run.id), "cancelled")
            finish_run(self.store, run.id, "cancelled", "cancelled")

    def logs(self, run_id: str, step: str | None = None, *, follow: bool = False) -> Iterator[str]:
        """The logs of the step pods, attempt by attempt, each under ``==> step attempt N
        (pod P) <==``; a node that serves no logs (kwok's fake nodes) is said so."""
        run = self.store.get_run(run_id)
        names = [s.name for s in self.store.steps(run.id)]
        if step is not None and step not in names:
            raise EngineError(f"run {run.id} has no step {step!r} (steps: {', '.join(names)})")
        if follow:
            for _ in self.watch(run.id):
                pass
        return self._pod_logs(run, [step] if step else names)

    def resume(
        self, run_id: str, *, max_parallel: int | None = None, use_cache: bool = True
    ) -> str:
        """Submit again the steps of ``run_id`` that did not succeed (a new Workflow, or a
        new round of Jobs); returns ``run_id``."""
        run = self.get_run(run_id)
        if run.status == "succeeded":
            raise EngineError(f"run {run.id} already succeeded; nothing to resume")
        if run.status not in TERMINAL:
            raise EngineError(f"run {run.id} is still running; cancel it first or wait")
        app = Application.from_yaml(run.spec, check_files=False)
        steps = self.store.steps(run.id)
        todo = {s.name for s in steps if s.status not in DONE_OK}
        plans = self._plans(app, run.workflow, run.id, run.parameters, only=todo)
        ref = dict(run.engine_ref or {})
        for s in steps:
            if s.name in todo:
                self.store.update_step(s.id, status="pending", error=None, finished_at=None)
        if ref.get("kind") == "Workflow":
            grace = ref.get("image_pull_grace", self.image_pull_grace)
            ref = self._create_workflow(
                app, run.workflow, run.id, run.parameters, plans, max_parallel
            )
            ref["image_pull_grace"] = grace
        else:
            round_ = int(ref.get("round", 0)) + 1
            plan = jobs.parent_plan(app, run.id, ref["namespace"], plans, round_)
            keep: list[dict[str, Any]] = [
                {"name": s.name, "depends_on": [], "job": None} for s in steps if s.name not in todo
            ]
            body = jobs.render_parent(app, run.id, ref["namespace"], keep + plan)
            self._patch(ref, {"data": body["data"]}, "merge")
            ref["round"] = round_
            ref.pop(DRIVER, None)  # the last driver has ended; the next one is recorded below
        self.store.update_run(
            run.id, status="running", error=None, finished_at=None, engine_ref=ref
        )
        if ref.get("kind") != "Workflow":
            self._start_driver(run.id)
        return run.id

    def services(self) -> ServiceBackend:
        """This application's services as Deployments on the cluster."""
        if self._services is None:
            try:
                from scanflow.kube.services import KubernetesServices
            except ImportError as exc:
                raise EngineError(
                    f"services on Kubernetes are not available in this installation ({exc})"
                ) from None
            self._services = KubernetesServices(self.project, self.cluster)
        return self._services

    # -- helpers ----------------------------------------------------------------------
    def _built_image(self, app: Application, workflow: str, executor: Executor) -> str:
        """The image ``scanflow build`` recorded for the step (pinned by digest), else
        :func:`default_image` with a warning (a cluster that pulls it needs it pushed)."""
        from scanflow.build.records import image_for
        from scanflow.errors import BuildError

        try:
            return image_for(self.project, f"executor/{workflow}/{executor.name}").pinned
        except BuildError:
            image = default_image(app, executor)
            log.warning(
                "no image built for step %s: using %s (run scanflow build)", executor.name, image
            )
            return image

    def _plans(self, app: Application, workflow: str, run_id: str, params: dict, **kw: Any):
        return plan_run(
            app,
            workflow,
            run_id,
            params,
            image_of=self.image_of or (lambda a, ex: self._built_image(a, workflow, ex)),
            tracking_uri=self.tracking_uri,
            pod_hook=self.pod_hook,
            by_reference=self.flavour == "argo",
            **kw,
        )

    def _resource(self, api_version: str, kind: str) -> Any:
        try:
            return self.cluster.resource(api_version, kind)
        except KubeError:
            if kind == "Workflow":
                raise EngineError(NO_ARGO.format(host=self.cluster.host)) from None
            raise

    def _create_workflow(
        self,
        app: Application,
        workflow: str,
        run_id: str,
        params: dict,
        plans: list,
        max_parallel: int | None,
    ) -> dict[str, Any]:
        namespace = namespace_of(app)
        labels = {**labels_of(app, component=workflow, kind="run"), RUN_LABEL: dns_label(run_id)}
        body = argo.render_workflow(app, workflow, plans, params, namespace, labels)
        if max_parallel:
            body["spec"]["parallelism"] = max_parallel
        resource = self._resource(argo.API_VERSION, "Workflow")
        created = call(
            lambda: self.cluster.dynamic.create(
                resource, body=body, namespace=namespace, field_manager=MANAGER
            ),
            "create",
            f"workflows in namespace {namespace!r}",
        )
        keys = {p.name: p.key for p in plans}
        return {
            "kind": "Workflow",
            "name": created.metadata.name,
            "namespace": namespace,
            "keys": keys,
        }

    def _create_parent(
        self, app: Application, run_id: str, namespace: str, plans: list, round_: int
    ) -> dict[str, Any]:
        plan = jobs.parent_plan(app, run_id, namespace, plans, round_)
        body = jobs.render_parent(app, run_id, namespace, plan)
        resource = self._resource("v1", "ConfigMap")
        self._resource("batch/v1", "Job")
        call(
            lambda: self.cluster.dynamic.create(
                resource, body=body, namespace=namespace, field_manager=MANAGER
            ),
            "create",
            f"configmaps in namespace {namespace!r}",
        )
        return {"kind": "ConfigMap", "name": body["metadata"]["name"], "namespace": namespace}

    def _patch(self, ref: dict[str, Any], patch: dict, how: str) -> None:
        from kubernetes.dynamic.exceptions import NotFoundError

        api = argo.API_VERSION if ref["kind"] == "Workflow" else "v1"
        resource = self._resource(api, ref["kind"])

        def send() -> None:
            try:
                self.cluster.dynamic.patch(
                    resource,
                    body=patch,
                    name=ref["name"],
                    namespace=ref["namespace"],
                    content_type=f"application/{how}-patch+json",
                )
            except NotFoundError:
                log.info("%s %s is gone already", ref["kind"], ref["name"])

        call(send, "patch", f"{ref['kind'].lower()}s {ref['name']!r}")

    def _start_driver(self, run_id: str) -> None:
        run_dir = self.project.state_dir / "runs" / run_id
        run_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            sys.executable,
            "-m",
            "scanflow.engines.kubernetes.driver",
            "--state-dir",
            str(self.project.state_dir),
            "--run-id",
            run_id,
        ]
        argv += ["--kubeconfig", self.kubeconfig] if self.kubeconfig else []
        argv += ["--context", self.context] if self.context else []
        with open(run_dir / "driver.log", "ab") as out:
            process = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        from scanflow.engines.local.ref import LocalProcessRef

        ref = dict(self.store.get_run(run_id).engine_ref or {})
        ref[DRIVER] = LocalProcessRef.of(process.pid).to_ref()
        self.store.update_run(run_id, engine_ref=ref)

    def _interrupted(self, run: RunRecord) -> bool:
        """Whether a Jobs run is recorded running but its driver process is gone."""
        from scanflow.engines.local.ref import LocalProcessRef

        ref = run.engine_ref or {}
        return (
            ref.get("kind") == "ConfigMap"
            and run.status in ("running", "pending")
            and LocalProcessRef.from_ref(ref.get(DRIVER)).gone()
        )

    def _sync_workflow(self, run: RunRecord) -> None:
        from kubernetes.dynamic.exceptions import NotFoundError

        ref = run.engine_ref or {}
        resource = self._resource(argo.API_VERSION, "Workflow")

        def get() -> Any:
            try:
                return self.cluster.dynamic.get(
                    resource, name=ref["name"], namespace=ref["namespace"]
                ).to_dict()
            except NotFoundError:
                return None

        live = call(get, "get", f"workflow {ref['name']!r}")
        steps = self.store.steps(run.id)
        if live is None:
            skip_or_cancel_rest(self.store, run.id, steps, "cancelled")
            finish_run(self.store, run.id, "cancelled", f"its Workflow {ref['name']} was deleted")
            return
        states = step_states(live, ref.get("keys", {}))
        attempts = record_attempts(
            self.store, run.id, steps, run_pods(self.cluster, ref["namespace"], run.id)
        )
        states = self._stuck_steps(run, states, attempts)
        if ref.get("cancelled"):  # Argo ends a terminated step Failed: it was cancelled
            states = {
                n: replace(s, status="cancelled", message="cancelled")
                if s.status in ("failed", "skipped")
                else s
                for n, s in states.items()
            }
        record_states(self.store, run.id, steps, states)
        status, message = run_phase(live)
        if status is None:
            return
        if ref.get("cancelled"):
            skip_or_cancel_rest(self.store, run.id, steps, "cancelled")
            finish_run(self.store, run.id, "cancelled", "cancelled")
            return
        skip_or_cancel_rest(self.store, run.id, steps, status)
        error = None if status == "succeeded" else f"{failure_message(steps)}: {message}"
        finish_run(self.store, run.id, status, error)

    def _stuck_steps(self, run: RunRecord, states: dict, attempts: dict) -> dict:
        """Step states with what the pods say: a failure names the exit code; a pod that
        cannot pull its image past the grace, or that a ResourceQuota refuses, fails its
        step and stops the Workflow (Argo would wait for it forever)."""
        ref = dict(run.engine_ref or {})
        stuck = dict(ref.get("stuck") or {})
        grace = float(ref.get("image_pull_grace", self.image_pull_grace))
        out = dict(states)
        for name, state in states.items():
            tries = attempts.get(name, [])
            if state.status == "failed" and last_exit(tries):
                out[name] = replace(state, message=f"{state.message}; {last_exit(tries)}")
            if state.status != "running" or name in stuck:
                continue
            why = pull_failure(tries, grace, time.time())
            if why is None and QUOTA_WORDS in state.message:
                why = f"a ResourceQuota refused its pod: {state.message}"
            if why is not None:
                stuck[name] = why
            elif tries and tries[-1].pull_error:
                out[name] = replace(state, message=tries[-1].pull_error)
        if stuck != (ref.get("stuck") or {}):
            ref["stuck"] = stuck
            self.store.update_run(run.id, engine_ref=ref)
            self._patch(ref, {"spec": {"shutdown": "Stop"}}, "merge")
        for name, why in stuck.items():
            if name in states:
                out[name] = replace(states[name], status="failed", message=why)
        return out

    def _pod_logs(self, run: RunRecord, steps: list[str]) -> Iterator[str]:
        from kubernetes.client import CoreV1Api

        namespace = (run.engine_ref or {}).get("namespace") or namespace_of(self.project.app)
        core = CoreV1Api(self.cluster.api)
        for step in steps:
            selector = f"{RUN_LABEL}={dns_label(run.id)},{STEP_LABEL}={dns_label(step)}"
            pods = call(
                lambda s=selector: core.list_namespaced_pod(namespace, label_selector=s),
                "list",
                f"pods in namespace {namespace!r}",
            ).items
            pods.sort(key=lambda p: p.metadata.creation_timestamp)
            if not pods:
                yield f"==> {step} <==\n(no pods: the step has not started or was removed)\n"
            for number, pod in enumerate(pods, 1):
                yield f"==> {step} attempt {number} (pod {pod.metadata.name}) <==\n"
                try:
                    yield core.read_namespaced_pod_log(pod.metadata.name, namespace) or ""
                except Exception as exc:  # noqa: BLE001 - said in the output, not raised
                    node = pod.spec.node_name or "no node yet"
                    reason = str(getattr(exc, "reason", None) or exc).splitlines()[0][:200]
                    yield f"(no logs: node {node} did not serve them: {reason})\n"


def _cluster_tracker(app: Application) -> str | None:
    """The tracker the step pods log to: the application's tracker URI if it is a server."""
    uri = app.tracker.uri if app.tracker else None
    return uri if uri and uri.startswith(("http://", "https://")) else None
