"""The toolkit: the side-effecting clients sensors and actuators use (engine, services,
registry, prediction logs, label feeds), built once per agent process.

Every member is an interface (:mod:`scanflow.agents.interfaces`), so tests and other
engines plug in their own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from scanflow.agents.interfaces import (
    EngineFactory,
    ModelRegistry,
    RecordSource,
    ServiceControl,
)
from scanflow.errors import ScanflowError


class ToolkitError(ScanflowError):
    """An agent asked for a client its toolkit does not have."""


@dataclass
class Toolkit:
    """Clients by name; each is created on first use by its factory."""

    app: str = "app"
    engine: EngineFactory | None = None
    registry: ModelRegistry | None = None
    services: dict[str, ServiceControl] = field(default_factory=dict)
    predictions: dict[str, RecordSource] = field(default_factory=dict)
    labels: dict[str, RecordSource] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)
    factories: dict[str, Callable[[str], Any]] = field(default_factory=dict)

    def _get(self, table: dict[str, Any], kind: str, name: str) -> Any:
        if name not in table:
            factory = self.factories.get(kind)
            if factory is None:
                known = ", ".join(table) or "none"
                raise ToolkitError(f"no {kind} {name!r} in this agent's toolkit (known: {known})")
            table[name] = factory(name)
        return table[name]

    def service(self, name: str) -> ServiceControl:
        """The control of service ``name``."""
        return self._get(self.services, "service", name)

    def prediction_log(self, service: str) -> RecordSource:
        """The prediction log of ``service``."""
        return self._get(self.predictions, "predictions", service)

    def label_feed(self, service: str) -> RecordSource:
        """The late-arriving labels of ``service``'s predictions."""
        return self._get(self.labels, "labels", service)

    def model_registry(self) -> ModelRegistry:
        """The model registry."""
        if self.registry is None:
            raise ToolkitError("this agent's toolkit has no model registry")
        return self.registry

    def engine_for(self, on_event: Callable[[Any], None] | None = None) -> Any:
        """An engine (see :class:`~scanflow.engines.base.Engine`) reporting to ``on_event``."""
        if self.engine is None:
            raise ToolkitError("this agent's toolkit has no workflow engine")
        return self.engine(on_event)
