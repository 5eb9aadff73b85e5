"""What every renderer shares: the project, the images, the namespace, object metadata."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scanflow.kube.images import image_for
from scanflow.kube.names import APPLICATION, COMPONENT, KIND, labels_of, namespace_of

if TYPE_CHECKING:
    from kubernetes.client import V1ObjectMeta

    from scanflow.spec.loader import Project

SERVE_PORT = 8080  # a service's container port
AGENT_PORT = 8090  # an agent's HTTP API
TRACKER_PORT = 5000
STATE_DIR = "/var/lib/scanflow"  # writable emptyDir: logs, caches, prediction log


@dataclass
class Context:
    """One application being rendered."""

    project: Project
    overrides: Mapping[str, str] = field(default_factory=dict)

    @property
    def app(self) -> Any:
        return self.project.app

    @property
    def namespace(self) -> str:
        return namespace_of(self.app)

    def image(self, component: str, kind: str | None = None) -> str:
        return image_for(self.project, component, self.overrides, kind)

    def labels(self, component: str | None = None, kind: str | None = None) -> dict[str, str]:
        return labels_of(self.app, component, kind)

    def selector(self, component: str, kind: str) -> dict[str, str]:
        """The labels a Deployment selects its pods by (a subset of :meth:`labels`)."""
        labels = self.labels(component, kind)
        return {k: labels[k] for k in (APPLICATION, COMPONENT, KIND)}

    def meta(
        self, name: str, component: str | None = None, kind: str | None = None
    ) -> V1ObjectMeta:
        from kubernetes.client import V1ObjectMeta

        return V1ObjectMeta(
            name=name, namespace=self.namespace, labels=self.labels(component, kind)
        )

    def tracking_uri(self) -> str | None:
        """The tracking URI pods use: the managed MLflow's Service, else the declared URI."""
        tracker = self.app.tracker
        if tracker is None:
            return None
        if tracker.managed:
            return f"http://mlflow.{self.namespace}.svc:{TRACKER_PORT}"
        return tracker.uri
