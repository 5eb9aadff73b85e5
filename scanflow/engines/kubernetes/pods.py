"""A run's step pods read as attempts (exit code, reason, times), recorded in the store
with each attempt's pod in its ``engine_ref`` (:class:`PodRef`); and the pods that cannot
start (an image that cannot be pulled), which fail their step after a grace period instead
of waiting forever."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from scanflow.engines.kubernetes.jobs import _stamp
from scanflow.engines.kubernetes.steps import RUN_LABEL, STEP_LABEL
from scanflow.kube.cluster import Cluster, call
from scanflow.kube.names import dns_label
from scanflow.store import AttemptRecord, StepRecord, Store

PULL_REASONS = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")
IMAGE_PULL_GRACE = 120.0  # seconds a step's pod may fail to pull its image before it fails
QUOTA_WORDS = "exceeded quota"  # in the message of a pod a ResourceQuota refused
SIDECARS = ("wait", "init")  # Argo's executor containers, next to the step's own ("main")


@dataclass(frozen=True)
class PodRef:
    """The engine's handle on an attempt, kept in its ``engine_ref``: ``{"pod": NAME}``."""

    pod: str | None = None

    @classmethod
    def from_ref(cls, ref: dict[str, Any] | None) -> PodRef:
        """The pod an attempt's ``engine_ref`` names (None when it names none)."""
        return cls((ref or {}).get("pod"))

    def to_ref(self) -> dict[str, Any]:
        """The JSON form stored in ``engine_ref``."""
        return {"pod": self.pod} if self.pod else {}


@dataclass(frozen=True)
class PodAttempt:
    """One pod of a step: its number (by creation), exit code and why it ended or waits."""

    pod: str
    number: int
    exit_code: int | None
    reason: str
    created: float
    finished: float | None
    pull_error: str | None = None  # the image cannot be pulled: what the node said


def _main_container(pod: dict[str, Any]) -> dict[str, Any]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    named = {c.get("name"): c for c in statuses}
    if "main" in named:
        return named["main"]
    return next((c for c in statuses if c.get("name") not in SIDECARS), {})


def pod_attempt(pod: dict[str, Any], number: int) -> PodAttempt:
    """What one pod (a dict as the API returns it) says about its attempt."""
    meta, status = pod["metadata"], pod.get("status") or {}
    state = _main_container(pod).get("state") or {}
    created = _stamp(meta.get("creationTimestamp")) or time.time()
    if state.get("terminated"):
        done = state["terminated"]
        code = done.get("exitCode")
        reason = done.get("reason") or ("Completed" if code == 0 else "Error")
        return PodAttempt(
            meta["name"], number, code, reason, created, _stamp(done.get("finishedAt"))
        )
    waiting = state.get("waiting") or {}
    if waiting.get("reason") in PULL_REASONS:
        why = f"{waiting['reason']}: {waiting.get('message') or 'the image cannot be pulled'}"
        return PodAttempt(meta["name"], number, None, why, created, None, pull_error=why)
    if waiting.get("reason"):
        return PodAttempt(meta["name"], number, None, waiting["reason"], created, None)
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            why = f"{condition.get('reason')}: {condition.get('message') or ''}".rstrip(": ")
            return PodAttempt(meta["name"], number, None, why, created, None)
    return PodAttempt(meta["name"], number, None, status.get("phase") or "Pending", created, None)


def delete_unfinished_pods(cluster: Cluster, namespace: str, run_id: str) -> None:
    """Delete the pods of ``run_id`` that have not ended: the kubelet stops their
    containers (SIGTERM, then SIGKILL after the pod's grace period)."""
    resource = cluster.resource("v1", "Pod")
    call(
        lambda: cluster.dynamic.delete(
            resource,
            namespace=namespace,
            label_selector=f"{RUN_LABEL}={dns_label(run_id)}",
            field_selector="status.phase!=Succeeded,status.phase!=Failed",
        ),
        "delete",
        f"pods of run {run_id} in namespace {namespace!r}",
    )


def run_pods(cluster: Cluster, namespace: str, run_id: str) -> dict[str, list[PodAttempt]]:
    """The attempts of each step of ``run_id`` (by step label), oldest first."""
    resource = cluster.resource("v1", "Pod")
    found = call(
        lambda: cluster.dynamic.get(
            resource, namespace=namespace, label_selector=f"{RUN_LABEL}={dns_label(run_id)}"
        ),
        "list",
        f"pods in namespace {namespace!r}",
    ).to_dict()
    by_step: dict[str, list[dict]] = {}
    for pod in found.get("items", []):
        by_step.setdefault(pod["metadata"]["labels"].get(STEP_LABEL, ""), []).append(pod)
    out = {}
    for step, pods in by_step.items():
        pods.sort(key=lambda p: (p["metadata"]["creationTimestamp"], p["metadata"]["name"]))
        out[step] = [pod_attempt(p, n) for n, p in enumerate(pods, 1)]
    return out


def record_attempts(
    store: Store, run_id: str, steps: list[StepRecord], pods: dict[str, list[PodAttempt]]
) -> dict[str, list[PodAttempt]]:
    """Write each step's pods as its attempts (new ones added, changed ones updated);
    returns the attempts by step name."""
    known = store.attempts(run_id)
    by_name = {}
    for step in steps:
        attempts = pods.get(dns_label(step.name), [])
        by_name[step.name] = attempts
        recorded = {a.number: a for a in known.get(step.id, [])}
        for attempt in attempts:
            fields = {
                "exit_code": attempt.exit_code,
                "error": None if attempt.exit_code == 0 else attempt.reason,
                "finished_at": attempt.finished,
            }
            old = recorded.get(attempt.number)
            if old is None:
                store.add_attempt(
                    AttemptRecord(
                        step_id=step.id,
                        number=attempt.number,
                        engine_ref=PodRef(attempt.pod).to_ref(),
                        started_at=attempt.created,
                        **fields,
                    )
                )
            elif any(getattr(old, k) != v for k, v in fields.items()):
                store.update_attempt(old.id, **fields)
    return by_name


def last_exit(attempts: list[PodAttempt]) -> str:
    """``attempt N exited with code C (reason)`` of the last ended attempt, or ''."""
    ended = [a for a in attempts if a.exit_code is not None]
    if not ended:
        return ""
    last = ended[-1]
    return f"attempt {last.number} exited with code {last.exit_code} ({last.reason})"


def pull_failure(attempts: list[PodAttempt], grace: float, now: float) -> str | None:
    """Why the step's newest pod cannot start, once it has failed to pull its image for
    ``grace`` seconds; None while it may still come."""
    if not attempts or attempts[-1].pull_error is None:
        return None
    if now - attempts[-1].created < grace:
        return None
    return f"its image cannot be pulled ({attempts[-1].pull_error}), for {grace:g} s"
