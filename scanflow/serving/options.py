"""Run-time options of one served service: the spec's ``Service`` plus where and how."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scanflow.spec.model import Service


class ServiceView:
    """Read-only attribute view of a validated ``Service`` dump.

    The supervisor process runs from this view rather than the pydantic model, so it does
    not carry pydantic (a service's memory is counted across all its processes).
    """

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getattr__(self, name: str) -> Any:
        try:
            value = self._data[name]
        except KeyError:
            raise AttributeError(name) from None
        return ServiceView(value) if isinstance(value, dict) else value

    def model_dump(self, mode: str = "json") -> dict[str, Any]:
        return dict(self._data)


@dataclass
class ServeOptions:
    """A :class:`~scanflow.spec.Service` and the machine-side settings to run it."""

    service: Service | ServiceView
    host: str = "127.0.0.1"
    port: int = 8080
    state_dir: Path = field(default_factory=lambda: Path(".scanflow"))
    tracking_uri: str | None = None
    drain_timeout: float = 30.0  # seconds a retiring worker may take to finish its requests
    stage_timeout: float = 120.0  # seconds every worker has to load a new version
    keep_alive: float = 5.0  # idle keep-alive connections close after this
    auth: bool = True  # POST /admin/* require the application's token (scanflow.auth)

    def __post_init__(self) -> None:
        self.state_dir = Path(self.state_dir).resolve()

    def to_json(self) -> dict[str, Any]:
        """Plain data that :meth:`from_json` turns back into options."""
        return {
            "service": self.service.model_dump(mode="json"),
            "host": self.host,
            "port": self.port,
            "state_dir": str(self.state_dir),
            "tracking_uri": self.tracking_uri,
            "drain_timeout": self.drain_timeout,
            "stage_timeout": self.stage_timeout,
            "keep_alive": self.keep_alive,
            "auth": self.auth,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ServeOptions:
        return cls(**{**data, "service": ServiceView(data["service"])})

    @property
    def service_dir(self) -> Path:
        return self.state_dir / "serving" / self.service.name

    @property
    def model_cache(self) -> Path:
        return self.state_dir / "serving" / "models"

    @property
    def metrics_dir(self) -> Path:
        return self.service_dir / "metrics"

    @property
    def predictions_dir(self) -> Path:
        return self.state_dir / "predictions" / self.service.name

    @property
    def max_request_bytes(self) -> int:
        return int(self.service.max_request_mb * 2**20)


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask, e.g. a container's cpuset)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # no affinity API on this platform
        return os.cpu_count() or 1


def start_workers(service: Service | ServiceView, cores: int | None = None) -> tuple[int, str]:
    """How many workers a service starts with, and why (for the start-up log).

    ``workers: auto`` (the default) is one per available core, kept within
    ``min_workers``..``max_workers``; a number is taken as it is."""
    if service.workers != "auto":
        return int(service.workers), "set by the service's 'workers'"
    cores = available_cores() if cores is None else cores
    n = max(service.min_workers, min(cores, service.max_workers))
    return n, (
        f"workers: auto, {cores} core(s) available, within min_workers={service.min_workers} "
        f"and max_workers={service.max_workers}"
    )
