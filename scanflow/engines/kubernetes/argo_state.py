"""A Workflow's status read as Scanflow step states (Argo's nodes, by task name)."""

from __future__ import annotations

from typing import Any

from scanflow.engines.kubernetes.jobs import JobState, _stamp

PHASES = {
    "Pending": "running",  # the task exists: its pod waits for a node
    "Running": "running",
    "Succeeded": "succeeded",
    "Failed": "failed",
    "Error": "failed",
    "Skipped": "skipped",
    "Omitted": "skipped",
}
RUN_PHASES = {"Succeeded": "succeeded", "Failed": "failed", "Error": "failed"}


def step_states(workflow: dict[str, Any], keys: dict[str, str]) -> dict[str, JobState]:
    """Step name -> state, from ``status.nodes`` (``keys``: step name -> task name). A
    step with retries is a Retry node whose children are its attempts."""
    names = {key: name for name, key in keys.items()}
    nodes = (workflow.get("status") or {}).get("nodes") or {}
    states = {}
    for node in nodes.values():
        name = names.get(node.get("displayName", ""))
        if name is None or node.get("type") not in ("Retry", "Pod", "Skipped", "Omitted"):
            continue
        attempts = len(node.get("children") or []) if node["type"] == "Retry" else 1
        states[name] = JobState(
            PHASES.get(node.get("phase", ""), "running"),
            attempts,
            node.get("message") or "",
            _stamp(node.get("startedAt")),
            _stamp(node.get("finishedAt")),
        )
    return states


def run_phase(workflow: dict[str, Any]) -> tuple[str | None, str]:
    """The run's final status (None while it goes on) and Argo's message."""
    status = workflow.get("status") or {}
    return RUN_PHASES.get(status.get("phase", "")), status.get("message") or ""
