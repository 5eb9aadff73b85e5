"""The Jobs engine's driver: a process that runs one run's DAG of Jobs to its end.

``python -m scanflow.engines.kubernetes.driver --state-dir D --run-id R [--kubeconfig K]
[--context C]``. It outlives the command that started it (that command may detach). Each
pass it reads the run's parent ConfigMap (its plan and its Jobs' bodies) and the Jobs of
the current round, records step states in the store, creates the Job of each step whose
upstream steps succeeded, skips those whose upstream failed, and ends the run. A parent
marked cancelled (or deleted) cancels the run.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from typing import Any

from scanflow.engines.kubernetes.jobs import (
    CANCEL_ANNOTATION,
    PLAN_KEY,
    ROUND_LABEL,
    JobState,
    job_state,
)
from scanflow.engines.kubernetes.pods import (
    IMAGE_PULL_GRACE,
    QUOTA_WORDS,
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
from scanflow.engines.kubernetes.steps import RUN_LABEL
from scanflow.kube.cluster import Cluster, call, connect
from scanflow.kube.names import MANAGER, dns_label
from scanflow.store import DONE_OK, TERMINAL, Store

log = logging.getLogger(__name__)

POLL_SECONDS = 0.3


def delete_jobs(cluster: Cluster, namespace: str, run_id: str) -> None:
    """Delete every Job of ``run_id`` and, in the background, their pods."""
    resource = cluster.resource("batch/v1", "Job")
    call(
        lambda: cluster.dynamic.delete(
            resource,
            namespace=namespace,
            label_selector=f"{RUN_LABEL}={dns_label(run_id)}",
            body={"propagationPolicy": "Background"},
        ),
        "delete",
        f"jobs of run {run_id} in namespace {namespace!r}",
    )


def _quota_refusal(cluster: Cluster, namespace: str, job: str) -> str | None:
    """The message of a ResourceQuota that refused ``job``'s pods, if any."""
    resource = cluster.resource("v1", "Event")
    events = call(
        lambda: cluster.dynamic.get(
            resource,
            namespace=namespace,
            field_selector=f"involvedObject.kind=Job,involvedObject.name={job}",
        ),
        "list",
        f"events of job {job!r}",
    )
    for event in events.to_dict().get("items", []):
        if event.get("reason") == "FailedCreate" and QUOTA_WORDS in (event.get("message") or ""):
            return f"a ResourceQuota refused its pod: {event['message']}"
    return None


class Driver:
    """Runs the DAG of run ``run_id`` until it ends."""

    def __init__(self, store: Store, cluster: Cluster, run_id: str) -> None:
        self.store, self.cluster, self.run_id = store, cluster, run_id
        run = store.get_run(run_id)
        self.ref: dict[str, Any] = dict(run.engine_ref or {})
        self.namespace: str = self.ref["namespace"]
        self.jobs = cluster.resource("batch/v1", "Job")
        self.configmaps = cluster.resource("v1", "ConfigMap")

    def _parent(self) -> dict[str, Any] | None:
        from kubernetes.dynamic.exceptions import NotFoundError

        def get() -> Any:
            try:
                return self.cluster.dynamic.get(
                    self.configmaps, name=self.ref["name"], namespace=self.namespace
                ).to_dict()
            except NotFoundError:
                return None

        return call(get, "get", f"configmap {self.ref['name']!r}")

    def _live_jobs(self, round_: int) -> dict[str, dict[str, Any]]:
        selector = f"{RUN_LABEL}={dns_label(self.run_id)},{ROUND_LABEL}={round_}"
        found = call(
            lambda: self.cluster.dynamic.get(
                self.jobs, namespace=self.namespace, label_selector=selector
            ),
            "list",
            f"jobs in namespace {self.namespace!r}",
        )
        return {j["metadata"]["name"]: j for j in found.to_dict().get("items", [])}

    def _create(self, body: dict[str, Any], parent: dict[str, Any]) -> None:
        meta = parent["metadata"]
        body = json.loads(json.dumps(body))
        body["metadata"]["ownerReferences"] = [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "name": meta["name"],
                "uid": meta["uid"],
                "blockOwnerDeletion": True,
            }
        ]
        call(
            lambda: self.cluster.dynamic.create(
                self.jobs, body=body, namespace=self.namespace, field_manager=MANAGER
            ),
            "create",
            f"job {body['metadata']['name']!r} in namespace {self.namespace!r}",
        )

    def _job_step(self, job: dict[str, Any], attempts: list) -> JobState:
        """The step's state from its Job and its pods: a quota refusal or an image that
        cannot be pulled (past the run's grace) fails it; a failure names the exit code."""
        state = job_state(job)
        name = job["metadata"]["name"]
        if state.status == "running" and state.attempts == 0:
            refusal = _quota_refusal(self.cluster, self.namespace, name)
            if refusal:
                return JobState("failed", 0, refusal, state.started)
        if state.status == "running":
            grace = float(self.ref.get("image_pull_grace", IMAGE_PULL_GRACE))
            unpulled = pull_failure(attempts, grace, time.time())
            if unpulled:
                self._delete(name)
                return JobState("failed", state.attempts, unpulled, state.started, time.time())
            if attempts and attempts[-1].pull_error:  # said while it may still come
                return JobState("running", state.attempts, attempts[-1].pull_error, state.started)
        if state.status == "failed" and last_exit(attempts):
            return JobState(
                "failed",
                state.attempts,
                f"{state.message}; {last_exit(attempts)}",
                state.started,
                state.finished,
            )
        return state

    def _delete(self, job: str) -> None:
        call(
            lambda: self.cluster.dynamic.delete(
                self.jobs,
                name=job,
                namespace=self.namespace,
                body={"propagationPolicy": "Background"},
            ),
            "delete",
            f"job {job!r} in namespace {self.namespace!r}",
        )

    def step_once(self) -> str | None:
        """One pass; returns the run's final status once it has one."""
        parent = self._parent()
        steps = self.store.steps(self.run_id)
        if parent is None or (parent["metadata"].get("annotations") or {}).get(CANCEL_ANNOTATION):
            delete_jobs(self.cluster, self.namespace, self.run_id)
            skip_or_cancel_rest(self.store, self.run_id, steps, "cancelled")
            finish_run(self.store, self.run_id, "cancelled", "cancelled")
            return "cancelled"
        plan = {s["name"]: s for s in json.loads(parent["data"][PLAN_KEY])}
        round_ = int(self.ref.get("round", 0))
        live = self._live_jobs(round_)
        attempts = record_attempts(
            self.store, self.run_id, steps, run_pods(self.cluster, self.namespace, self.run_id)
        )
        states: dict[str, JobState] = {}
        by_name = {s.name: s for s in steps}
        for name, entry in plan.items():
            step = by_name[name]
            if step.status in TERMINAL:
                continue
            job = live.get(entry["job"]["metadata"]["name"])
            if job is not None:
                states[name] = self._job_step(job, attempts[name])
                continue
            upstream = [by_name[d].status for d in entry["depends_on"]]
            if any(s in TERMINAL and s not in DONE_OK for s in upstream):
                states[name] = JobState("skipped", 0, "an upstream step failed")
            elif all(s in DONE_OK for s in upstream):
                self._create(entry["job"], parent)
                states[name] = JobState("running", 0, "", time.time())
        record_states(self.store, self.run_id, steps, states)
        if all(s.status in TERMINAL for s in steps):
            if all(s.status in DONE_OK for s in steps):
                finish_run(self.store, self.run_id, "succeeded", None)
                return "succeeded"
            finish_run(self.store, self.run_id, "failed", failure_message(steps))
            return "failed"
        return None

    def run(self) -> str:
        """Pass after pass until the run ends; returns its status."""
        while True:
            status = self.step_once()
            if status is not None:
                return status
            time.sleep(POLL_SECONDS)


def main(argv: list[str] | None = None) -> int:
    """Drive one run; an error ends the run ``failed`` with the reason."""
    parser = argparse.ArgumentParser(prog="scanflow-jobs-driver")
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--kubeconfig")
    parser.add_argument("--context")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    store = Store.for_state_dir(args.state_dir)
    try:
        cluster = connect(args.context, args.kubeconfig)
        status = Driver(store, cluster, args.run_id).run()
    except Exception as exc:  # noqa: BLE001 - recorded on the run, the driver's only output
        log.exception("run %s: the driver failed", args.run_id)
        if store.get_run(args.run_id).status not in TERMINAL:
            finish_run(store, args.run_id, "failed", f"engine error: {exc}")
        return 1
    log.info("run %s %s", args.run_id, status)
    return 0


if __name__ == "__main__":
    sys.exit(main())
