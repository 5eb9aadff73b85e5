"""Where pods go: services on the serving nodes (``kubernetes.serving_node_label``), batch
pods off them (the co-location rule: training never competes with online traffic)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scanflow.errors import SpecError

if TYPE_CHECKING:
    from kubernetes.client import V1Affinity

    from scanflow.spec.model import Application


def serving_label(app: Application) -> tuple[str, str] | None:
    """``(key, value)`` of ``kubernetes.serving_node_label``, or None when unset."""
    label = app.kubernetes.serving_node_label
    if not label:
        return None
    key, sep, value = label.partition("=")
    if not sep or not key.strip():
        raise SpecError(
            [f"kubernetes.serving_node_label: {label!r} is not 'key=value' (e.g. 'role=serving')"]
        )
    return key.strip(), value.strip()


def _affinity(app: Application, operator: str, required: bool) -> V1Affinity | None:
    from kubernetes.client import (
        V1Affinity,
        V1NodeAffinity,
        V1NodeSelector,
        V1NodeSelectorRequirement,
        V1NodeSelectorTerm,
        V1PreferredSchedulingTerm,
    )

    label = serving_label(app)
    if label is None:
        return None
    term = V1NodeSelectorTerm(
        match_expressions=[
            V1NodeSelectorRequirement(key=label[0], operator=operator, values=[label[1]])
        ]
    )
    if required:
        node = V1NodeAffinity(
            required_during_scheduling_ignored_during_execution=V1NodeSelector(
                node_selector_terms=[term]
            )
        )
    else:
        node = V1NodeAffinity(
            preferred_during_scheduling_ignored_during_execution=[
                V1PreferredSchedulingTerm(preference=term, weight=100)
            ]
        )
    return V1Affinity(node_affinity=node)


def batch_affinity(app: Application) -> V1Affinity | None:
    """Batch pods (workflow steps) must not run on the serving nodes; None when unset."""
    return _affinity(app, "NotIn", required=True)


def serving_affinity(app: Application) -> V1Affinity | None:
    """Services and their backups must run on the serving nodes; None when unset."""
    return _affinity(app, "In", required=True)
