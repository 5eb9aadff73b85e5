"""Run-time options of one served service: the spec's ``Service`` plus where and how."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from scanflow.spec.model import Service


@dataclass
class ServeOptions:
    """A :class:`~scanflow.spec.Service` and the machine-side settings to run it."""

    service: Service
    host: str = "127.0.0.1"
    port: int = 8080
    state_dir: Path = field(default_factory=lambda: Path(".scanflow"))
    tracking_uri: str | None = None
    drain_timeout: float = 30.0  # seconds a retiring worker may take to finish its requests
    stage_timeout: float = 120.0  # seconds every worker has to load a new version
    keep_alive: float = 5.0  # idle keep-alive connections close after this

    def __post_init__(self) -> None:
        self.state_dir = Path(self.state_dir).resolve()

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
