"""The interfaces agents act through; implementations live in :mod:`scanflow.agents.clients`.

Agents never reach a service, a registry or a log directly: they use these, so the same
strategies run on the local engine, on Kubernetes, and in tests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

EngineFactory = Callable[[Callable[[Any], None] | None], Any]
"""Makes an :class:`~scanflow.engines.base.Engine` whose step events go to the callback."""


@runtime_checkable
class ServiceControl(Protocol):
    """One online service as agents see it."""

    def status(self) -> dict[str, Any]:
        """At least ``ready`` (bool), ``workers`` (int) and ``model_version`` (str or None)."""
        ...

    def metrics(self) -> dict[str, float]:
        """Cumulative counters and gauges: ``requests``, ``errors``, ``queue_depth``, and
        ``latency_buckets`` (upper bound -> cumulative count) for percentiles."""
        ...

    def scale(self, workers: int) -> dict[str, Any]:
        """Change the number of workers live; returns the new status."""
        ...

    def refresh(self) -> dict[str, Any]:
        """Look at the registry alias now (hot-swap without waiting for the next poll)."""
        ...


@runtime_checkable
class TrafficRouter(Protocol):
    """A service whose traffic can go to a backup deployment (on Kubernetes: the backup
    model's Deployment); failover uses it instead of moving the registry alias."""

    def can_route(self) -> bool:
        """Whether a backup deployment exists to route to."""
        ...

    def route(self, to: str) -> str:
        """Send the traffic to ``"primary"`` or ``"backup"``; returns where it goes."""
        ...

    def routed_to(self) -> str:
        """Where the traffic goes now: ``"primary"`` or ``"backup"``."""
        ...


@runtime_checkable
class ModelRegistry(Protocol):
    """Registered model versions and their aliases."""

    def alias_version(self, model: str, alias: str) -> str | None:
        """The version ``model@alias`` points at (None when unset)."""
        ...

    def set_alias(self, model: str, alias: str, version: str) -> None:
        """Point ``model@alias`` at ``version``."""
        ...

    def versions(self, model: str) -> list[dict[str, Any]]:
        """Every version of ``model``: ``version``, ``run_id``, ``source``, ``created_at``."""
        ...


@runtime_checkable
class RecordSource(Protocol):
    """An append-only feed of records (prediction log, labels) read with a cursor
    (:class:`scanflow.feed.JsonlFeed` is the local one)."""

    def read_new(
        self, cursor: Any = None, max_bytes: int | None = None
    ) -> tuple[list[dict[str, Any]], Any]:
        """Records written after ``cursor`` (from the start when None), at most about
        ``max_bytes`` of them, and the cursor after them (the rest waits for the next call)."""
        ...

    def end(self, backlog_bytes: int = 0) -> Any:
        """A cursor leaving only the newest ``backlog_bytes`` of records unread."""
        ...
